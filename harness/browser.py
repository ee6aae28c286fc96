"""Debian's chromium under Playwright, as the browser tests drive it.

Playwright cannot download its own browser here, so the tests launch ``/usr/bin/chromium``
(``apt-get install chromium``) and skip, saying so, where it is missing. Screenshots of
each step go to ``MODEL_REGISTRY_TEST_ARTEFACTS`` (default ``test-artefacts/browser``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
MISSING_REASON = f"{CHROMIUM} is missing: apt-get install chromium"
# Without the background-networking flags Chromium tries to reach Google and, on a closed
# network, its own connections get refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(os.environ.get("MODEL_REGISTRY_TEST_ARTEFACTS", ROOT / "test-artefacts" / "browser"))
#: Actions and assertions wait this long: the first fetch of a page can take more than
#: Playwright's 5 s default on a busy 2-core machine (seen: the trend chart still loading).
TIMEOUT_MS = 30_000


@contextmanager
def chromium_page(base_url: str, **page_options: Any) -> Iterator[Any]:
    """A fresh chromium and one page of 1440 x 1000 on ``base_url``; the browser closes on the way out."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, base_url=base_url, **page_options)
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    """Keep a screenshot of the whole page as ``ARTEFACTS/name.png``."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
