"""The container tools Kiln drives (Debian's podman and skopeo; buildah where a Dockerfile
is built), found once, and run the way every image step needs: output logged, secrets
redacted, a failure reported as the command, its exit code and its last lines."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path

from kiln.builders.base import BuildError, Log
from kiln.builders.uvtool import TAIL_LINES, redact
from kiln.podman import INSTALL_HINT as INSTALL_HINT
from kiln.podman import EngineMissing as EngineMissing
from kiln.podman import last_message as last_message
from kiln.podman import require as require
from kiln.podman import tools as tools


@cache
def tool_version(tool: str) -> str:
    path = getattr(tools(), tool)
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or f"{tool} (unknown version)"


def run(
    tool: str,
    args: Sequence[str],
    *,
    what: str,
    log: Log | None = None,
    secrets: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> str:
    """Run ``tool ARGS`` (tool: "podman" or "skopeo"); return its stdout. stderr goes to the
    log; a non-zero exit raises BuildError naming ``what``, the command and the last lines."""
    secrets = secrets or {}
    command = [getattr(tools(), tool), *args]
    shown = redact(" ".join([tool, *args]), secrets)
    if log is not None:
        log.write(f"$ {shown}\n")
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        input=input_text,
        check=False,
    )
    output = redact(result.stderr, secrets)
    if log is not None and output:
        log.write(output if output.endswith("\n") else output + "\n")
    if result.returncode != 0:
        tail = "\n".join((output or result.stdout).strip().splitlines()[-TAIL_LINES:])
        raise BuildError(
            f"{what} failed: `{tool} {args[0]}` exited with {result.returncode}:\n{tail}"
        )
    return redact(result.stdout, secrets)


def stream(
    tool: str,
    args: Sequence[str],
    *,
    what: str,
    log: Log,
    secrets: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``tool ARGS`` with its output (stdout and stderr together) logged line by line as
    it comes, and passed to ``on_line``: for long steps (an install in a container, a
    Dockerfile build)."""
    secrets = secrets or {}
    shown = redact(" ".join([tool, *args]), secrets)
    log.write(f"$ {shown}\n")
    process = subprocess.Popen(
        [getattr(tools(), tool), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines: list[str] = []
    with process.stdout:
        for raw in process.stdout:
            line = redact(raw, secrets).rstrip("\n")
            lines = [*lines[-TAIL_LINES + 1 :], line]
            log.write(line + "\n")
            if on_line is not None:
                on_line(line)
    code = process.wait()
    if code != 0:
        tail = "\n".join(lines)
        raise BuildError(f"{what} failed: `{tool} {args[0]}` exited with {code}:\n{tail}")
