"""Registration refuses a backend no probe could ever reach, naming the field. Pure."""

from __future__ import annotations

import pytest

from models_core.backends.catalog import Backend, BackendError


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://127.0.0.1:80800", "URL 'http://127.0.0.1:80800' has port 80800; a port is a number of 1-65535"),
        ("http://127.0.0.1:0", "URL 'http://127.0.0.1:0' has port 0; a port is a number of 1-65535"),
        ("http://gpu-x:-1", "URL 'http://gpu-x:-1' has port -1; a port is a number of 1-65535"),
        (
            "http://gpu-x:http",
            "URL 'http://gpu-x:http' cannot be read (Invalid port: 'http'); it must be http(s)://host[:port][/path]",
        ),
        (
            "http://[::1:8000",
            "URL 'http://[::1:8000' cannot be read (Invalid IPv6 URL); it must be http(s)://host[:port][/path]",
        ),
        ("http://:8000", "URL 'http://:8000' must be http(s)://host[:port][/path]"),
        ("http://gpu x:8000", "URL 'http://gpu x:8000' must be http(s)://host[:port][/path]"),
        (
            "http://gpu-x:8000/?v=1",
            "URL 'http://gpu-x:8000/?v=1' must be http(s)://host[:port][/path], without '?' or "
            "'#': the health and status paths are appended to it",
        ),
    ],
)
def test_registration_refuses_a_url_no_probe_can_reach_naming_what_is_wrong(url, refusal):
    with pytest.raises(BackendError) as refused:
        Backend("gpu-x", url).validated()

    assert str(refused.value) == f"backend gpu-x: {refusal}"


def test_registration_refuses_a_path_that_makes_no_url_naming_the_option():
    with pytest.raises(BackendError, match=r"^backend gpu-x: --status-path '/st\\x00atus' does not make a URL: "):
        Backend("gpu-x", "http://gpu-x:8000", status_path="/st\x00atus").validated()


@pytest.mark.parametrize(
    "url", ["http://gpu-a:8000", "https://[::1]:8443/v1", "http://127.0.0.1", "http://gpu-a:65535/v2"]
)
def test_registration_takes_every_url_a_probe_can_reach(url):
    assert Backend("gpu-a", url).validated().base_url == url
