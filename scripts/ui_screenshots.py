"""Screenshots of the web UI's main pages into docs/ui/*.png, for the README.

Builds the same small workspace the UI tests use (tests/ui/uisite.py: a built environment
with a lock, two versions, a run with a metric), serves it with a real ``kiln server`` and
looks at it with Debian's chromium. Run from the repository root, with the test extra
installed and scripts/chromium.sh run once:

    PYTHONPATH=src python scripts/ui_screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "ui")]

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from uisite import CHROMIUM_ARGS, Site, ui_site  # noqa: E402

OUT = REPO / "docs" / "ui"


def _log_in(page: Page, site: Site) -> None:
    page.goto(site.url + "/login")
    page.get_by_label("Personal access token").fill(site.team.admin_token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/environments")


def shoot(site: Site) -> list[Path]:
    pages = {
        "login": "/login",
        "environments": "/environments",
        "version": "/environments/shop/versions/2?against=shop:1",
        "runs": "/runs",
        "run": f"/runs/{site.run_id}",
        "deployment": "/deployments/web",
        "audit": "/audit",
    }
    made = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(site.url + pages.pop("login"))
        page.screenshot(path=OUT / "login.png")
        made.append(OUT / "login.png")
        _log_in(page, site)
        for name, path in pages.items():
            page.goto(site.url + path)
            if name == "deployment":  # with a test request's answer
                page.get_by_role("button", name="Send test request").click()
                page.get_by_label("Answer body").wait_for()
            page.screenshot(path=OUT / f"{name}.png", full_page=name != "version")
            made.append(OUT / f"{name}.png")
        browser.close()
    return made


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["KILN_CACHE_DIR"] = str(root / "cache")
        with ui_site(root, root / "cache") as site:
            for path in shoot(site):
                print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
