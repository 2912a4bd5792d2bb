"""One served workspace and one headless chromium for the UI tests of a session (building
the environment and the run costs seconds); each test gets a browser context of its own, so
cookies never carry over."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from uisite import CHROMIUM_ARGS, Site, ui_site

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("ui")
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_CACHE_DIR", str(cache))
        with ui_site(root, cache) as made:
            yield made


# Per module, not per session: while Playwright's sync API is open it keeps an asyncio loop
# running in this thread, and a later test in the same worker that calls asyncio.run (the conda
# builder does) would fail. A module's end closes it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("no /usr/bin/chromium: scripts/test.sh runs scripts/chromium.sh")
        pytest.skip("no /usr/bin/chromium: run scripts/chromium.sh")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
