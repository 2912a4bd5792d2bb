"""Kiln's per-user folders are platformdirs' answer: computed without importing it in the
common Linux case (kiln.userdirs), asked of it otherwise. Compared here for every mix of a set,
unset, empty, relative or odd ``$HOME`` and ``$XDG_*_HOME``."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import platformdirs
import pytest

from kiln import userdirs

ASKED = {
    "cache": (userdirs.cache_path, platformdirs.user_cache_path, "XDG_CACHE_HOME"),
    "data": (userdirs.data_path, platformdirs.user_data_path, "XDG_DATA_HOME"),
    "config": (userdirs.config_path, platformdirs.user_config_path, "XDG_CONFIG_HOME"),
}
# Values a user's environment might hold: unset (None), empty, absolute with and without a
# trailing slash or doubled slashes, relative, the root written two ways, a tilde, a space.
VALUES = [None, "", "/home/ann", "/home/ann/", "//srv//x", "relative/dir", "/", "//", "~", " "]


def _answer(ask: Callable[[], Path]) -> Path | str:
    try:
        return ask()
    except Exception as exc:  # platformdirs refuses (no home it can resolve): so must we
        return type(exc).__name__


@pytest.mark.skipif(sys.platform != "linux", reason="the computed path is Linux's only")
def test_the_folder_is_the_one_platformdirs_names(monkeypatch: pytest.MonkeyPatch) -> None:
    differences = []
    for kind, home, xdg in itertools.product(sorted(ASKED), VALUES, VALUES):
        ours, theirs, variable = ASKED[kind]
        for name, value in (("HOME", home), (variable, xdg)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        expected, got = _answer(partial(theirs, "kiln")), _answer(ours)
        if got != expected:
            differences.append(f"{kind} HOME={home!r} {variable}={xdg!r}: {got} != {expected}")
    assert differences == []


def test_the_common_case_does_not_import_platformdirs(tmp_path: Path) -> None:
    code = (
        "import sys; from kiln import userdirs; "
        "print(userdirs.cache_path(), userdirs.data_path(), userdirs.config_path(), "
        "'platformdirs' in sys.modules)"
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        str(tmp_path / ".cache" / "kiln"),
        str(tmp_path / ".local" / "share" / "kiln"),
        str(tmp_path / ".config" / "kiln"),
        "False",
    ]
