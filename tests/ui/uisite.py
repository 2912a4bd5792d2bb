"""The workspace the UI tests look at, made once per session with the real core and CLI: an
environment built from a local package index (so it has a lock), two versions of it to diff,
names to search among, and a run that logged a metric several times (so it has a chart).
Then a real ``kiln server`` serves it, and Debian's chromium looks at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register, served_index
from kilntesting.runs import PYTHON_ONLY, kiln_cli, write_script
from kilntesting.teamserver import Team, team_server
from kilntesting.weblogin import form_token as form_token  # the UI tests' name for it
from kilntesting.weblogin import logged_in

TRAIN = """
    import os
    from kiln import Run
    run = Run.get_context()
    for step in range(8):
        run.log("loss", 1.0 / (step + 1))
    run.log("name", "tiny")
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
    print("training done")
"""
SCORE = """
    def init():
        pass
    def run(raw_data):
        return {"echo": raw_data}
"""
# Headless and offline: without these chromium tries to reach the internet (machine.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class Site:
    team: Team
    run_id: str

    @property
    def url(self) -> str:
        return self.team.url


def _populate(ws: Workspace, root: Path, cache: Path, index: PackageIndex) -> str:
    from kiln.builds import ensure_built
    from kiln.runs.core import list_runs
    from kiln.serving import models

    index.publish("demo", "1.0")
    index.publish("extra", "2.0")
    index.publish("late", "1.0")
    register(ws, definition("shop", ["demo"], index.url))
    ensure_built(ws, register(ws, definition("shop", ["demo", "extra"], index.url)))
    register(ws, definition("slow", ["late"], index.url))  # built from the UI, in a test
    for name in ("needle-finder", "haystack-a", "haystack-b"):
        register(ws, {"name": name, "python": {"version": "3.11"}})
    register(ws, PYTHON_ONLY)
    src = write_script(root / "src", "train.py", TRAIN).parent
    done = kiln_cli(
        ws, cache, "run", "submit", "--env", "py", "-d", str(src), "-e", "exp", "train.py"
    )
    assert done.returncode == 0, done.stderr
    [run] = list_runs(ws, experiment="exp")
    weights = write_script(root / "model", "weights.txt", "0.5\n")
    models.register(ws, weights, "weights", run_id=run.id, environment=("py", "1"))
    return run.id


@contextmanager
def ui_site(root: Path, cache: Path) -> Iterator[Site]:
    with served_index(root / "index") as index:
        ws = Workspace.create(root / "ws")
        try:
            run_id = _populate(ws, root, cache, index)
        finally:
            ws.close()
        # From now on each wheel takes a second to download: a build from the UI takes long
        # enough for its log to be seen growing.
        index.delay, index.delay_suffix = 1.0, ".whl"
        with _deployed(root, cache), team_server(root) as team:
            yield Site(team, run_id)


@contextmanager
def _deployed(root: Path, cache: Path) -> Iterator[None]:
    """A real deployment ``web`` (a supervisor and a worker on 127.0.0.1), deleted after."""
    ws = Workspace(root / "ws")
    try:
        src = write_script(root / "serve", "score.py", SCORE).parent
        create = ["deploy", "create", "-n", "web", "--model", "weights:1", "--env", "py"]
        made = kiln_cli(ws, cache, *create, "--entry-script", "score.py", "-d", str(src))
        assert made.returncode == 0, made.stderr
        yield
    finally:
        kiln_cli(ws, cache, "deploy", "delete", "web")
        ws.close()


def session_cookie(site: Site, token: str) -> httpx.Client:
    """An HTTP client logged in through the login form, as a browser does."""
    return logged_in(site.url, token)
