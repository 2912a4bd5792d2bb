"""Run uv (shipped as the ``uv`` PyPI package) the way every build needs it: never downloading
interpreters, ignoring user configuration, with Kiln's own cache so environments share files by
hard links, output captured into the build log, and secrets redacted from anything reported."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kiln.builders.base import BuildError, Log

TAIL_LINES = 15
MIN_SECRET_LENGTH = 8  # shorter values cannot be told apart from ordinary text in a log


@cache
def uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        raise BuildError(
            "uv is not installed; reinstall Kiln (`pip install kiln`), which ships it"
        ) from None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        raise BuildError(
            "the uv binary is missing from the uv package; reinstall it (`pip install --force-reinstall uv`)"
        ) from None


@cache
@cache  # asked once per process, like uv_binary: a build asks twice (marker and record)
def uv_version() -> str:
    result = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "uv (unknown version)"


def uv_environment(cache_dir: Path, secrets: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(
        UV_CACHE_DIR=str(cache_dir),
        UV_PYTHON_DOWNLOADS="never",  # a missing interpreter is an error, never a download
        UV_NO_CONFIG="1",  # a user's uv.toml must not change what Kiln builds
        UV_NO_PROGRESS="1",
    )
    env.update(secrets or {})
    return env


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """Replace every secret value with its ``${NAME}`` reference.

    Values shorter than MIN_SECRET_LENGTH are left alone: replacing a two-letter value
    everywhere would mangle unrelated text. kiln.buildinputs.secrets_for refuses such values
    before anything runs, so none reaches a build."""
    for name, value in secrets.items():
        if len(value) >= MIN_SECRET_LENGTH:
            text = text.replace(value, "${" + name + "}")
    return text


@dataclass
class StartedUv:
    """A uv command running in the background (``start_uv``), to be finished by ``finish_uv``."""

    process: subprocess.Popen[str]
    shown: str  # the command as logged, secrets redacted
    secrets: Mapping[str, str]
    what: str


def start_uv(
    args: Sequence[str],
    *,
    cache_dir: Path,
    secrets: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str,
) -> StartedUv:
    """Start ``uv ARGS`` without waiting for it (its output is captured)."""
    secrets = secrets or {}
    process = subprocess.Popen(
        [uv_binary(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=uv_environment(cache_dir, secrets),
    )
    shown = redact(" ".join(["uv", *args]), secrets)
    return StartedUv(process, shown, secrets, what)


def finish_uv(started: StartedUv, log: Log) -> str:
    """Wait for a started uv command and log it; returns stdout, or raises as ``run_uv``."""
    stdout, stderr = started.process.communicate()
    log.write(f"$ {started.shown}\n")
    output = redact(stderr, started.secrets)
    log.write(output if output.endswith("\n") or not output else output + "\n")
    _raise_on_failure(started.process.returncode, output, started.shown, started.what)
    return redact(stdout, started.secrets)


def _raise_on_failure(code: int, output: str, shown: str, what: str) -> None:
    if code != 0:
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        raise BuildError(f"{what} failed: `{shown}` exited with {code}:\n{tail}")


def run_uv(
    args: Sequence[str],
    *,
    log: Log,
    cache_dir: Path,
    secrets: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Run ``uv ARGS``; return stdout. On failure raise BuildError with the command, its exit
    code and the last lines of its output, secrets redacted. With ``on_line``, uv's messages
    (stderr; stdout, where ``pip compile`` echoes its lock, is dropped and "" is returned) are
    logged and passed on line by line as they come, e.g. to a ``uvprogress.UvFollower``."""
    if on_line is None:
        started = start_uv(args, cache_dir=cache_dir, secrets=secrets, cwd=cwd, what=what)
        return finish_uv(started, log)
    secrets = secrets or {}
    shown = redact(" ".join(["uv", *args]), secrets)
    log.write(f"$ {shown}\n")
    env = uv_environment(cache_dir, secrets)
    code, output = _stream([uv_binary(), *args], cwd, env, secrets, log, on_line)
    _raise_on_failure(code, output, shown, what)
    return ""


def _stream(
    command: list[str],
    cwd: Path | None,
    env: dict[str, str],
    secrets: Mapping[str, str],
    log: Log,
    on_line: Callable[[str], None],
) -> tuple[int, str]:
    """Run ``command``, logging and passing on each line of its stderr; returns the exit code
    and the (redacted) stderr."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,  # one pipe (stderr): nothing can fill up unread
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    assert process.stderr is not None
    lines = []
    with process.stderr:
        for raw in process.stderr:
            line = redact(raw, secrets).rstrip("\n")
            lines.append(line)
            log.write(line + "\n")
            on_line(line)
    return process.wait(), "\n".join(lines)
