"""The matcher a folder without ``.gitignore``/``.kilnignore`` gets (no pathspec import) keeps
and drops exactly the paths pathspec's gitignore rules do for the patterns always applied."""

from __future__ import annotations

from pathlib import Path

import pathspec
from hypothesis import given
from hypothesis import strategies as st

from kiln.environment import files

_NAMES = st.sampled_from(
    [".git", ".kiln", "__pycache__", "src", "a.py", ".gitx", "x.git", "__pycache__.py", "kiln"]
)
_PATHS = st.builds(
    lambda parts, folder: "/".join(parts) + ("/" if folder else ""),
    st.lists(_NAMES, min_size=1, max_size=4),
    st.booleans(),
)
_REFERENCE = pathspec.GitIgnoreSpec.from_lines(list(files._ALWAYS_IGNORED))


@given(_PATHS)
def test_the_always_ignored_matcher_agrees_with_pathspec(path: str) -> None:
    assert files._AlwaysIgnored().match_file(path) == _REFERENCE.match_file(path), path


def test_a_folder_with_an_ignore_file_still_gets_pathspec(tmp_path: Path) -> None:
    (tmp_path / ".kilnignore").write_text("*.log\n")
    (tmp_path / "keep.py").write_text("")
    (tmp_path / "drop.log").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "keep.pyc").write_text("")
    kept = [relative for relative, _ in files.context_files(tmp_path)]
    assert kept == [".kilnignore", "keep.py"]
    (tmp_path / ".kilnignore").unlink()
    assert [relative for relative, _ in files.context_files(tmp_path)] == ["drop.log", "keep.py"]
