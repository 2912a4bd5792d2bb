"""What `kiln env build` shows while it builds: on a terminal (a real pseudo-terminal) one live
line whose elapsed time moves while a phase runs and which names what uv downloads; on a pipe,
or with --json, one plain line per phase, in the order the build does them, with no control
characters."""

from __future__ import annotations

import fcntl
import os
import random
import re
import select
import struct
import subprocess
import termios

from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register
from kilntesting.cli import KILN, run_kiln

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SHOWN = re.compile(r"kiln: building bulky:1: (\w+) \((\d+\.\d) s\)")
SAFETY_LIMIT = 300.0  # seconds: only so a hung build cannot hang the test run
PLAIN = [  # what a build of bulky prints when it cannot redraw a line
    "kiln: building bulky:1: resolve",
    "kiln: building bulky:1: download",
    "kiln: building bulky:1: install",
    "kiln: building bulky:1: verify",
]


def _bulky(workspace: Workspace, index: PackageIndex) -> None:
    """A package whose wheel is over 1 MiB (uv names such downloads) and whose download takes a
    while (the index waits before answering), so a phase lasts several display refreshes."""
    noise = random.Random(16).randbytes(1_200_000)  # random: the wheel's zip cannot shrink it
    index.publish("bulky", "1.0", data={"blob.bin": noise})
    index.delay, index.delay_suffix = 1.5, ".whl"
    register(workspace, definition("bulky", ["bulky"], index.url))


def _build_on_a_terminal(env: dict[str, str], *extra: str) -> str:
    """`kiln env build bulky` with stderr on a pseudo-terminal; what the terminal received."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    process = subprocess.Popen(
        [*KILN, "env", "build", "bulky", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, **env, "TERM": "xterm-256color"},
    )
    os.close(follower)
    received = b""
    try:
        while select.select([leader], [], [], SAFETY_LIMIT)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the build exited and closed the terminal
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(leader)
        code = process.wait(timeout=SAFETY_LIMIT)
    assert code == 0, received.decode(errors="replace")
    return received.decode(errors="replace")


def test_a_terminal_sees_the_time_move_within_a_phase_and_what_uv_downloads(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    _bulky(sqlite_workspace, package_index)

    shown = _build_on_a_terminal(cli_env)

    assert "\x1b[" in shown  # drawn in place, not as lines
    frames = ESCAPE.sub("", shown).replace("\r", "\n").splitlines()
    elapsed: dict[str, set[str]] = {}
    for frame in frames:
        if found := SHOWN.search(frame):
            elapsed.setdefault(found[1], set()).add(found[2])
    assert len(elapsed["resolve"]) > 1, frames  # uv fetches the slow wheel to resolve
    assert any("downloading bulky (1.1MiB)" in frame for frame in frames), frames
    assert list(elapsed) == ["resolve", "download", "install", "verify"]


def test_a_pipe_gets_one_plain_line_per_phase_in_the_order_they_happen(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    _bulky(sqlite_workspace, package_index)

    shown = run_kiln("env", "build", "bulky", env=cli_env).stderr

    assert "\x1b" not in shown and "\r" not in shown
    assert [line for line in shown.splitlines() if line.startswith("kiln: building")] == PLAIN


def test_json_on_a_terminal_gets_the_plain_lines_too(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    _bulky(sqlite_workspace, package_index)

    shown = _build_on_a_terminal(cli_env, "--json")

    assert "\x1b" not in shown
    assert [line for line in shown.splitlines() if line.startswith("kiln: building")] == PLAIN
