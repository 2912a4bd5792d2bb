"""Azure's files pin patch releases (``python=3.10.18``). An interpreter the machine has is used
as it is; one it lacks is an error that lists what was found and how to let uv install it, and
with ``python_downloads: automatic`` uv is asked to install it, from the workspace's mirror when
one is set. The machine cannot reach uv's download source, so what is tested for real here is
the request reaching the mirror and the failure said in one line; a successful managed install
needs a reachable mirror and is not tested here."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from kilntesting.cli import run_kiln

MISSING = "3.10.18"  # a release uv can download, absent from this machine


class _Mirror(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]]

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_mirror() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Mirror", (_Mirror,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def _workspace(tmp_path: Path, version: str, *init: str) -> dict[str, str]:
    env = {"KILN_WORKSPACE": str(tmp_path / "ws"), "KILN_CACHE_DIR": str(tmp_path / "cache")}
    run_kiln("init", *init, env=env)
    source = tmp_path / "kiln.yml"
    source.write_text(f"name: pinned\npython:\n  version: '{version}'\n")
    run_kiln("env", "register", "-f", str(source), env=env)
    return env


def test_a_missing_patch_release_says_what_was_found_and_how_to_get_it(tmp_path: Path) -> None:
    env = _workspace(tmp_path, MISSING)
    failed = run_kiln("env", "build", "pinned", env=env, check=False)
    assert failed.returncode == 6
    message = failed.stderr.strip().splitlines()[-1]
    assert f"`python.version` '{MISSING}': no such interpreter on this machine (found: " in message
    assert "--python-downloads automatic" in message
    assert not (tmp_path / "cache" / "envs").exists() or not any(
        (tmp_path / "cache" / "envs").iterdir()
    )


def test_automatic_downloads_ask_the_mirror_and_say_why_they_failed(
    tmp_path: Path, empty_mirror: tuple[str, list[str]]
) -> None:
    mirror, seen = empty_mirror
    env = _workspace(
        tmp_path, MISSING, "--python-downloads", "automatic", "--python-mirror", mirror
    )
    config = json.loads((tmp_path / "ws" / ".kiln" / "workspace.json").read_text())
    assert (config["python_downloads"], config["python_mirror"]) == ("automatic", mirror)
    failed = run_kiln("env", "build", "pinned", env=env, check=False)
    assert failed.returncode == 6
    message = failed.stderr.strip().splitlines()[-1]
    assert f"`python.version` '{MISSING}': not on this machine" in message
    assert "could not install it from the workspace's python_mirror" in message
    assert "404" in message and "--python-mirror URL" in message
    assert any(f"cpython-{MISSING}" in path for path in seen), seen  # uv asked the mirror


def test_the_environment_variable_turns_downloads_off_again(
    tmp_path: Path, empty_mirror: tuple[str, list[str]]
) -> None:
    mirror, seen = empty_mirror
    env = _workspace(
        tmp_path, MISSING, "--python-downloads", "automatic", "--python-mirror", mirror
    )
    failed = run_kiln(
        "env", "build", "pinned", env={**env, "KILN_PYTHON_DOWNLOADS": "never"}, check=False
    )
    assert failed.returncode == 6 and "no such interpreter on this machine" in failed.stderr
    assert seen == []


def test_a_mirror_with_a_password_and_a_bad_choice_are_refused(tmp_path: Path) -> None:
    env = {"KILN_WORKSPACE": str(tmp_path / "ws")}
    run_kiln("init", env=env)
    before = (tmp_path / "ws" / ".kiln" / "workspace.json").read_text()
    refused = run_kiln(
        "init", "--python-mirror", "https://u:hunter22@mirror.example/python", env=env, check=False
    )
    assert refused.returncode != 0 and "plain-text password" in refused.stderr
    assert "hunter22" not in refused.stderr
    wrong = run_kiln("init", "--python-downloads", "sometimes", env=env, check=False)
    assert wrong.returncode == 2 and "--python-downloads" in wrong.stderr
    assert (tmp_path / "ws" / ".kiln" / "workspace.json").read_text() == before


def test_an_exact_patch_release_on_the_machine_is_used_without_downloading(
    tmp_path: Path,
) -> None:
    python = Path("/usr/bin/python3.11")
    if not python.is_file():  # scripts/test.sh installs Debian's python3.11 beside the machine's
        python = Path(sys._base_executable)
    patch = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env = _workspace(tmp_path, patch)
    built = json.loads(run_kiln("env", "build", "pinned", "--json", env=env).stdout)
    version = subprocess.run(
        [built["interpreter"], "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == patch
