"""kiln.filelocks: the cross-process lock every build, resolution and ``kiln cache gc`` takes,
tested between real processes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from kiln.filelocks import held

# A process that takes the lock (shared if asked), says so, then holds it until told to stop
# (a line on stdin) or killed.
HOLDER = (
    "import sys; from pathlib import Path; from kiln.filelocks import held\n"
    "with held(Path(sys.argv[1]), shared=sys.argv[2] == 'shared'):\n"
    "    print('holding', flush=True); sys.stdin.readline()\n"
)


def _holder(path: Path, kind: str = "exclusive") -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "holding\n"
    return process


def _free(path: Path, *, shared: bool = False) -> bool:
    with held(path, shared=shared, wait=False) as got:
        return got


def test_a_lock_another_process_holds_is_refused_until_it_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "a.lock"
    holder = _holder(lock)
    try:
        assert not _free(lock) and not _free(lock, shared=True)
        assert _free(tmp_path / "locks" / "b.lock")  # another name is another lock
    finally:
        holder.communicate("stop\n")
    assert holder.returncode == 0 and _free(lock)


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    holder = _holder(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock.exists() and _free(lock)


def test_shared_holders_share_and_keep_an_exclusive_one_out(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    holder = _holder(lock, "shared")
    try:
        assert _free(lock, shared=True) and not _free(lock)
    finally:
        holder.communicate("stop\n")
    assert _free(lock)


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    holder = _holder(lock)
    order: list[str] = []

    def wait_for_it() -> None:
        with held(lock) as got:
            order.append(f"waiter got it: {got}")

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    time.sleep(0.2)  # not a timing assertion: the waiter must still be waiting after it
    order.append("holder lets go")
    holder.communicate("stop\n")
    waiter.join(timeout=30)
    assert order == ["holder lets go", "waiter got it: True"]


def test_a_second_hold_in_the_same_process_waits_too(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    with held(lock) as got:
        assert got
        assert not _free(lock)  # another open of the same file in this process
    assert _free(lock)


def test_the_lock_file_and_its_folder_are_private(tmp_path: Path) -> None:
    lock = tmp_path / "new" / "a.lock"
    old = os.umask(0o022)
    try:
        with held(lock):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
