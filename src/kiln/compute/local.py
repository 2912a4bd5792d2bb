"""The local target: the script as a process group of its own on this machine, in the built
environment's interpreter, its output piped into the run's log (and the console when watched).

A process group id outlives its processes and the kernel may hand it to somebody else, so every
signal goes only to live members of the group that carry the run's ``KILN_RUN_ID``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kiln.compute import DEFAULT_TARGET, RUN_ID_VARIABLE
from kiln.compute.base import Ended, Execution, Job, RunControl, RunRef
from kiln.compute.runfolder import RunOutput, with_kiln_importable
from kiln.errors import InvalidRequest

scheme: str | None = None
address_form: str = DEFAULT_TARGET
bare_address: bool = True


def in_image(address: str) -> bool:
    return False


def check_address(address: str) -> None:
    if address != DEFAULT_TARGET:
        raise InvalidRequest(
            f"`compute_target`: {address!r}: the local target is {DEFAULT_TARGET!r}"
        )


def prepare(job: Job, output: RunOutput) -> None:
    """Nothing to check: the environment is built on this machine already."""


def start(job: Job, control: RunControl, output: RunOutput) -> Execution:
    job.ready.require_this_machine(
        "the local target",
        'run it with `--target container` (SDK: compute_target="container"), which runs '
        "the script inside the image",
    )
    env = job.ready.process_environment(dict(os.environ))
    env.update(job.variables)
    with_kiln_importable(env, job.folder)
    piped = output.echo is not None
    process = subprocess.Popen(
        job.ready.activation.command([str(job.ready.interpreter), job.script, *job.arguments]),
        cwd=job.work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if piped else output.file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: cancel stops everything it started
    )
    try:
        control.running(process_group=process.pid)
    except BaseException:
        stop_group(process.pid, job.run_id, 0.0)  # never leave it running unrecorded
        raise
    return _Process(process, job.run_id, control, output)


class _Process:
    def __init__(
        self, process: subprocess.Popen[bytes], run_id: str, control: RunControl, output: RunOutput
    ) -> None:
        self.process, self.run_id, self.control, self.output = process, run_id, control, output
        self.stopping = False

    def follow(self) -> Ended:
        if self.process.stdout is not None:
            _pump(self.process.stdout.fileno(), self.output)
        code = self.process.wait()
        if self.stopping or self.control.cancel_requested():
            return Ended(code, "canceled", canceled=True)
        if code == 0:
            return Ended(0)
        if code < 0:
            return Ended(code, f"the script was killed by signal {-code}")
        return Ended(code, f"the script exited with code {code}")

    def stop(self, grace: float) -> None:
        self.stopping = True
        self.output.line(f"canceling: SIGTERM, then SIGKILL after {grace:g} s")
        stop_group(self.process.pid, self.run_id, grace)


def _pump(fd: int, output: RunOutput) -> None:
    """Copy the script's output as it comes, in bounded chunks: nothing is lost however fast it
    prints, and memory stays constant however much."""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        output.write(data)


def cancel(ref: RunRef, *, grace: float) -> None:
    if ref.process_group:
        stop_group(ref.process_group, ref.run_id, grace)


def abandoned(ref: RunRef) -> Ended:
    """A local run cannot outlive its watcher: whatever is left of it is stopped."""
    if ref.process_group:
        stop_group(ref.process_group, ref.run_id, grace=2.0)
    if ref.cancel_requested:
        return Ended(None, "canceled", canceled=True)
    return Ended(None, f"{ref.watcher} stopped before the run ended; its processes were stopped")


def _group_members(pgid: int, run_id: str) -> list[int]:
    """Live processes of group ``pgid`` that carry this run's KILN_RUN_ID: a process group id
    the kernel has since given to somebody else is never signalled."""
    marker = f"{RUN_ID_VARIABLE}={run_id}".encode()
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                members.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return members


def group_alive(pgid: int, run_id: str) -> bool:
    if not Path("/proc").is_dir():  # pragma: no cover - not Linux: trust the group id
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return bool(_group_members(pgid, run_id))


def signal_group(pgid: int, run_id: str, signum: int) -> bool:
    if not group_alive(pgid, run_id):
        return False
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def stop_group(pgid: int, run_id: str, grace: float) -> None:
    """SIGTERM to the run's process group, then SIGKILL once ``grace`` seconds have passed."""
    if not signal_group(pgid, run_id, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid, run_id):
            return
        time.sleep(0.05)
    signal_group(pgid, run_id, signal.SIGKILL)
