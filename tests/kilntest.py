"""Helpers for tests (a plain module: test files import from here, never from a conftest,
because every conftest.py is imported under the same module name)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.errors import InvalidDefinition

REPO = Path(__file__).resolve().parents[1]
KILN = [sys.executable, "-m", "kiln"]


def run_kiln(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [*KILN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kiln {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def error_of(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """The one-line message of the InvalidDefinition that ``call`` raises."""
    with pytest.raises(InvalidDefinition) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    return message
