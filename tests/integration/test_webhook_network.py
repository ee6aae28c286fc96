"""The webhook sender on a hostile network: a resolver that rebinds a name to the cloud
metadata address between two lookups, a name that answers it outright, and one that never
answers in time. Real sockets and a real DNS server, in a network namespace of the test's own
(``unshare``, as root), so the machine's own network and resolver are untouched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from registry_helpers import ROOT


def _namespaces_available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _namespaces_available(), reason="needs root, unshare and ip for a network namespace")
def test_no_post_reaches_the_metadata_address_and_a_hung_resolver_costs_one_timeout(tmp_path):
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            sys.executable,
            str(ROOT / "tests/integration/hostile_network.py"),
            str(tmp_path / "resolv.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), os.environ.get("PYTHONPATH", "")])},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert "169.254.169.254" not in seen["hits"]  # whatever the resolver answered the second time
    assert seen["hits"] and set(seen["hits"]) == {"127.0.0.1"}
    for outcome in seen["rebind.test"]:  # each POST went to the address it checked, or was not sent
        assert outcome == "delivered 200" or outcome.startswith("not sent: rebind.test resolves to 169.254.169.254")
    assert seen["metadata.test"] == [
        "not sent: metadata.test resolves to 169.254.169.254, a link-local, metadata,"
        " multicast or reserved address, never a receiver"
    ]
    assert seen["slow"]["error"].startswith("TimeoutError") and seen["slow"]["seconds"] < 2
    assert seen["loop_closed_after_s"] < 3  # the hung lookup is left behind, not waited for
