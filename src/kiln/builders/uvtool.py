"""Run uv (shipped as the ``uv`` PyPI package) the way every build needs it: never downloading
interpreters, ignoring user configuration, with Kiln's own cache so environments share files by
hard links, output captured into the build log, and secrets redacted from anything reported."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from kiln.builders.base import BuildError, Log

TAIL_LINES = 15


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
    """Replace every secret value with its ``${NAME}`` reference."""
    for name, value in secrets.items():
        if value:
            text = text.replace(value, "${" + name + "}")
    return text


def run_uv(
    args: Sequence[str],
    *,
    log: Log,
    cache_dir: Path,
    secrets: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str,
) -> str:
    """Run ``uv ARGS``; return stdout. On failure raise BuildError with the command, its exit
    code and the last lines of its output, secrets redacted."""
    secrets = secrets or {}
    command = [uv_binary(), *args]
    shown = redact(" ".join(["uv", *args]), secrets)
    log.write(f"$ {shown}\n")
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=uv_environment(cache_dir, secrets),
        check=False,
    )
    output = redact(result.stderr, secrets)
    log.write(output if output.endswith("\n") or not output else output + "\n")
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        raise BuildError(f"{what} failed: `{shown}` exited with {result.returncode}:\n{tail}")
    return redact(result.stdout, secrets)
