"""A real git server on 127.0.0.1 (``git daemon``, serving git:// from a folder of bare
repositories) and a helper to make commits in them, for build contexts given as git URLs.

``git_server`` is a function fixture's body: each test gets its own repositories and server,
stopped by its PID afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kilntesting.images import free_port

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Kiln Test",
    "GIT_AUTHOR_EMAIL": "test@kiln.invalid",
    "GIT_COMMITTER_NAME": "Kiln Test",
    "GIT_COMMITTER_EMAIL": "test@kiln.invalid",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_IDENTITY}, capture_output=True, text=True
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@dataclass
class GitServer:
    root: Path  # bare repositories live here, served as git://HOST/NAME
    url: str  # git://127.0.0.1:PORT

    def repository(self, name: str) -> Path:
        """A new bare repository ``name`` (served) and its working clone, returned."""
        git("init", "-q", "--bare", "-b", "main", str(self.root / name), cwd=self.root)
        work = self.root.parent / "work" / name
        git("clone", "-q", str(self.root / name), str(work), cwd=self.root)
        git("checkout", "-q", "-b", "main", cwd=work)
        return work

    def commit(self, work: Path, files: dict[str, str], message: str = "change") -> str:
        """Write ``files`` (path -> text) in the clone, commit and push; the new commit."""
        for relative, text in files.items():
            path = work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def url_of(self, name: str) -> str:
        return f"{self.url}/{name}"


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def git_server(folder: Path) -> Iterator[GitServer]:
    """``git daemon`` on a free port of 127.0.0.1, exporting the bare repositories under
    ``folder/repos``; stopped by its PID."""
    root = folder / "repos"
    root.mkdir(parents=True)
    for _attempt in range(5):
        port = free_port()
        command = [
            "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
            f"--port={port}", f"--base-path={root}", str(root),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline and not _accepts(port):
            time.sleep(0.05)
        if process.poll() is None and _accepts(port):
            break
        process.kill()
        process.wait()
    else:
        raise AssertionError("git daemon did not start")
    try:
        yield GitServer(root, f"git://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
