"""What the fuzz suite found, kept as plain examples so they never come back unnoticed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.builders import conda
from kiln.builders.base import Lock
from kiln.errors import InvalidDefinition
from kiln.formats import azure_v2, conda_env
from kiln.lockexport import CorruptLock, to_requirements


def test_a_conda_spec_that_does_not_parse_beside_pip_lines_is_one_clear_line(
    tmp_path: Path,
) -> None:
    """It raised ValueError from the check for `pip` among the conda packages."""
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n- ¡python=3.11\n- pip:\n  - six\n")
    with pytest.raises(InvalidDefinition, match="is not a conda match spec"):
        conda_env.load(path)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("conda_file:\n? '\n\n'\n", "unknown key `\\n`"),
        ("conda_file: '\n\n'\n", "conda_file"),
    ],
)
def test_a_value_with_a_line_break_stays_on_the_messages_one_line(
    tmp_path: Path, text: str, shown: str
) -> None:
    path = tmp_path / "environment.yaml"
    path.write_text(text)
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.load(path)
    assert len(str(caught.value).splitlines()) == 1 and shown in str(caught.value)


def test_a_verified_lock_missing_what_an_export_reads_is_a_corrupt_lock() -> None:
    """A conda record without `url`, a pylock package whose `wheels` is a number: KeyError
    and TypeError before."""
    records = {"conda": [{"name": "numpy", "version": "1"}], "pip": ""}
    with pytest.raises(CorruptLock, match="not one this export can read"):
        conda.export_lock(Lock(conda.LOCK_FORMAT, json.dumps(records)), "conda", header="h")
    pylock = 'lock-version = "1.0"\n[[packages]]\nname = "six"\nversion = "1"\nwheels = 5\n'
    with pytest.raises(CorruptLock, match="not one this export can read"):
        to_requirements("pylock.toml", pylock, header="h")
