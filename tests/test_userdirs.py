"""Kiln's per-user folders are platformdirs' answer: computed without importing it in the
common Linux case (kiln.userdirs), asked of it otherwise. Compared here for every mix of a set,
unset, empty, relative or odd ``$HOME`` and ``$XDG_*_HOME``."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln import userdirs

ASKED = {
    "cache": (userdirs.cache_path, platformdirs.user_cache_path, "XDG_CACHE_HOME"),
    "data": (userdirs.data_path, platformdirs.user_data_path, "XDG_DATA_HOME"),
    "config": (userdirs.config_path, platformdirs.user_config_path, "XDG_CONFIG_HOME"),
}
# Values a user's environment might hold: unset (None), empty, absolute with and without a
# trailing slash or doubled slashes, relative, the root, a tilde.
VALUES = st.sampled_from(
    [None, "", "/home/ann", "/home/ann/", "//srv//x", "relative/dir", "/", "~", "~/cache", " "]
)


@pytest.mark.skipif(sys.platform != "linux", reason="the computed path is Linux's only")
@settings(max_examples=150, deadline=None)
@given(home=VALUES, xdg=VALUES, kind=st.sampled_from(sorted(ASKED)))
def test_the_folder_is_the_one_platformdirs_names(
    home: str | None, xdg: str | None, kind: str
) -> None:
    ours, theirs, variable = ASKED[kind]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("HOME", home), (variable, xdg)):
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        try:
            expected: Path | type[Exception] = theirs("kiln")
        except Exception as exc:  # platformdirs refuses (no home it can resolve): so do we
            expected = type(exc)
        if isinstance(expected, Path):
            assert ours() == expected
        else:
            with pytest.raises(expected):
                ours()


def test_the_common_case_does_not_import_platformdirs(tmp_path: Path) -> None:
    import subprocess

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
