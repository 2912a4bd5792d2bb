"""The web UI in a real browser (Debian's chromium through Playwright) against a real
``kiln server``: what a person sees and can do."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect
from uisite import Site

from kilntesting.images import BaseImage

SHOP_2 = "/environments/shop/versions/2"


def _log_in(page: Page, site: Site, token: str, start: str = "/environments") -> None:
    page.goto(site.url + start)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Personal access token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


def test_log_in_and_find_an_environment_by_search(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token)
    rows = page.locator("#results tbody tr")
    expect(rows.filter(has_text="haystack-a")).to_have_count(1)
    page.get_by_label("Name contains").fill("needle")  # htmx swaps the table as one types
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("needle-finder")
    expect(page).to_have_url(re.compile(r"search=needle"))
    rows.first.get_by_role("link", name="needle-finder").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("needle-finder")


def test_a_version_shows_its_definition_lock_builds_and_log(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, SHOP_2)
    expect(page.get_by_label("Definition as YAML")).to_contain_text("- extra")
    lock = page.locator("table.lock")
    expect(lock.locator("tbody tr")).to_have_count(2)
    expect(lock.locator("tr", has_text="demo")).to_contain_text("1.0")
    expect(lock.locator("tr", has_text="extra")).to_contain_text("2.0")
    expect(page.locator("td .status-succeeded").first).to_be_visible()
    expect(page.get_by_label("Build log")).not_to_be_empty()
    expect(page.locator("dl.facts")).to_contain_text("local:")  # who registered it


def test_diff_two_versions(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, SHOP_2)
    page.get_by_label("Other version (NAME:VERSION)").fill("shop:1")
    page.get_by_role("button", name="Diff").click()
    differences = page.get_by_label("Differences")
    expect(differences).to_contain_text("python.pip.packages: + extra")
    page.get_by_label("Other version (NAME:VERSION)").fill("shop:9")
    page.get_by_role("button", name="Diff").click()
    expect(page.locator("#against-error")).to_have_text(re.compile(r"^no environment shop:9 in "))


def test_a_run_shows_its_metric_as_a_chart(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, "/runs")
    page.get_by_role("link", name=site.run_id).click()
    chart = page.locator('svg[data-metric="loss"]')
    expect(chart).to_be_visible()
    points = chart.locator("polyline").get_attribute("points") or ""
    ys = [float(p.split(",")[1]) for p in points.split()]
    assert len(ys) == 8 and ys == sorted(ys)  # the loss falls: each point lower on the page
    expect(page.get_by_role("cell", name="tiny")).to_be_visible()  # a text metric: a value
    expect(page.get_by_role("link", name="outputs/model.txt")).to_be_visible()
    expect(page.get_by_label("Run log")).to_contain_text("training done")


def test_a_reader_sees_no_write_buttons(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.token("rita-ui", "reader"), SHOP_2)
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop")
    expect(page.get_by_role("button", name=re.compile("Archive|Restore"))).to_have_count(0)
    expect(page.get_by_label("Add a tag (KEY=VALUE)")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)


def test_a_contributor_adds_a_tag_and_a_bad_one_shows_the_cli_error(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, SHOP_2)
    field = page.get_by_label("Add a tag (KEY=VALUE)")
    field.fill("stage")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#new_tag-error")).to_have_text(
        "tag 'stage' must be KEY=VALUE; use --remove KEY to drop one"
    )
    expect(page.get_by_label("Add a tag (KEY=VALUE)")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Add a tag (KEY=VALUE)").fill("stage=ui-test")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("dl.facts")).to_contain_text("stage=ui-test")


def test_no_session_shows_the_login_page(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/runs/{site.run_id}")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns%2F"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Kiln")
    page.get_by_label("Personal access token").fill("kiln_" + "x" * 43)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#token-error")).to_contain_text("unknown or revoked")


def test_an_unknown_id_shows_a_404_page(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token)
    answer = page.goto(f"{site.url}/environments/no-such-env/versions/3")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_role("alert")).to_contain_text("no environment no-such-env:3")
    answer = page.goto(f"{site.url}/runs/exp_no_such_run")
    assert answer is not None and answer.status == 404


def test_a_form_without_its_token_is_refused(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, SHOP_2)
    page.locator('form[action$="/tags"] input[name="csrf"]').evaluate("e => e.remove()")
    page.get_by_label("Add a tag (KEY=VALUE)").fill("forged=yes")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    page.goto(site.url + SHOP_2)
    expect(page.locator("dl.facts")).not_to_contain_text("forged=yes")


def test_inputs_have_labels_and_the_keyboard_reaches_them(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, SHOP_2)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
                 .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []
    page.keyboard.press("Tab")  # the first stop is the skip link
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    for _ in range(30):  # from the content, Tab reaches the tag field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new_tag":
            break
    assert page.evaluate("document.activeElement.id") == "new_tag"


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_text_has_readable_contrast(page: Page, site: Site) -> None:
    """WCAG AA: 4.5:1 for the body text, links, errors and the header's links."""
    _log_in(page, site, site.team.admin_token, "/environments?tag==x")
    pairs = page.evaluate(
        """() => ['main', 'main a', 'p.error', 'header.top nav a'].map(sel => {
             const e = document.querySelector(sel);
             let bg = e, colour = 'rgba(0, 0, 0, 0)';
             while (bg && (colour = getComputedStyle(bg).backgroundColor) === 'rgba(0, 0, 0, 0)')
               bg = bg.parentElement;
             return [sel, getComputedStyle(e).color, colour];
           })"""
    )
    for selector, fore, back in pairs:
        light, dark = sorted([_luminance(fore), _luminance(back)], reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (selector, fore, back)


def test_rebuild_shows_the_build_log_growing_live(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, "/environments/slow/versions/1")
    expect(page.get_by_role("cell", name="Not built yet.")).to_be_visible()
    page.get_by_role("button", name="Rebuild").click()
    live = page.get_by_label("Live build log")
    expect(live).to_contain_text("[kiln] building slow:1")
    expect(live).to_contain_text("[kiln] resolve", timeout=60_000)
    # Seen before the build ended: a wheel takes a second to download (uisite).
    assert "build succeeded" not in (live.text_content() or "")
    # At the end the page reloads: the build's record and its whole log, no live log.
    expect(page.locator("td .status-succeeded").first).to_be_visible(timeout=120_000)
    expect(page.get_by_label("Live build log")).to_have_count(0)
    expect(page.locator("table.lock tr", has_text="late")).to_contain_text("1.0")


SLOW_RUN = """
    import time
    for step in range(6):
        print("step", step, flush=True)
        time.sleep(1)
"""


def test_a_running_run_shows_its_log_growing_live(page: Page, site: Site, tmp_path: Path) -> None:
    from kiln.workspace import Workspace
    from kilntesting.runs import kiln_cli, write_script

    src = write_script(tmp_path / "src", "slow.py", SLOW_RUN).parent
    ws = Workspace(site.team.root / "ws")
    try:
        cache = Path(os.environ["KILN_CACHE_DIR"])
        args = ["run", "submit", "--detach", "--env", "py", "-d", str(src), "-e", "live", "slow.py"]
        done = kiln_cli(ws, cache, *args)
    finally:
        ws.close()
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    _log_in(page, site, site.team.admin_token, f"/runs/{run_id}")
    live = page.get_by_label("Run log")
    expect(live).to_contain_text("step 1", timeout=60_000)
    assert "step 5" not in (live.text_content() or "")  # seen while the run goes on
    # At the end the page reloads with the run's final state and its whole log.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Completed", timeout=60_000)
    expect(page.get_by_label("Run log")).to_contain_text("step 5")


def test_revoking_a_token_ends_the_web_sessions_made_from_it(page: Page, site: Site) -> None:
    body = {"owner": "tess-ui", "role": "contributor"}
    made = site.team.call("POST", "/api/v1/tokens", site.team.admin_token, json=body).json()
    _log_in(page, site, made["token"], SHOP_2)
    expect(page.get_by_role("button", name="Rebuild")).to_be_visible()
    revoked = site.team.call("POST", f"/api/v1/tokens/{made['id']}/revoke", made["token"])
    assert revoked.status_code == 200
    page.reload()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Kiln")


def test_send_a_test_request_to_a_deployment(page: Page, site: Site) -> None:
    _log_in(page, site, site.team.admin_token, "/deployments/web")
    body = page.get_by_label("Request body (JSON), sent to the scoring URI from the server")
    body.fill('{"data": [1, 2, 3]}')
    page.get_by_role("button", name="Send test request").click()
    expect(page.get_by_label("Status code")).to_have_text("200")
    expect(page.get_by_label("Answer body")).to_contain_text("echo")
    expect(page.get_by_label("Answer body")).to_contain_text("[1, 2, 3]")
    body.fill("{not json")
    page.get_by_role("button", name="Send test request").click()
    expect(page.locator("#body-error")).to_have_text(re.compile(r"^`body`: not JSON \("))
    expect(body).to_have_attribute("aria-invalid", "true")
    expect(body).to_have_value("{not json")  # kept, to be fixed


def test_a_reader_cannot_send_a_test_request(page: Page, site: Site) -> None:
    token = site.team.token("rae-ui", "reader")
    _log_in(page, site, token, "/deployments/web")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Deployment web")
    expect(page.get_by_role("button", name="Send test request")).to_have_count(0)
    refused = site.team.call("POST", "/api/v1/deployments/web/test", token, json={"body": "{}"})
    assert refused.status_code == 403 and "rae-ui is a reader" in refused.json()["detail"]


def test_a_version_with_an_image_shows_it_and_its_dockerfile(
    page: Page, site: Site, base_image: BaseImage
) -> None:
    from kiln.workspace import Workspace
    from kilntesting.runs import kiln_cli

    ws = Workspace(site.team.root / "ws")
    try:
        cache = Path(os.environ["KILN_CACHE_DIR"])
        path = site.team.root / "imaged.yml"
        path.write_text(f"name: imaged\ndocker:\n  base_image: {base_image.local_ref}\n")
        for command in (["env", "register", "-f", str(path)], ["image", "build", "imaged:1"]):
            done = kiln_cli(ws, cache, *command, timeout=600)
            assert done.returncode == 0, done.stderr
    finally:
        ws.close()
    _log_in(page, site, site.team.admin_token, "/environments/imaged/versions/1")
    facts = page.get_by_label("Image details")
    expect(facts).to_contain_text("localhost/kiln/env:")
    expect(facts).to_contain_text(base_image.local_ref)
    dockerfile = page.get_by_label("Equivalent Dockerfile")
    pinned = re.search(r"\((sha256:[0-9a-f]{64})\)", facts.text_content() or "")
    assert pinned is not None  # the base's digest in the local store: the Dockerfile's FROM
    expect(dockerfile).to_contain_text(f"FROM localhost/kiln-test/debian-python@{pinned[1]}")
    expect(dockerfile).to_contain_text('LABEL io.kiln.environment="imaged:1"')
    page.goto(site.url + SHOP_2)  # no image: said so, no details
    expect(page.get_by_text("No image of this version")).to_be_visible()
    expect(page.get_by_label("Image details")).to_have_count(0)
