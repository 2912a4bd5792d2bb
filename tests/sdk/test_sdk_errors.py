"""Where azureml-core raises TypeError, FileNotFoundError or FileExistsError, Kiln raises its
own error that is also one of those: Azure ML code's ``except`` clauses keep working, and the
CLI still reports the same one line and exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln import CondaDependencies, Environment
from kiln.errors import AlreadyExists, Conflict, InvalidDefinition, KilnError, MissingFile
from kilntesting.cli import run_kiln


def test_a_name_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError) as caught:
        Environment(3)  # type: ignore[arg-type]

    assert isinstance(caught.value, InvalidDefinition)
    assert (
        str(caught.value)
        == "`name`: expected a string, got int (3); name the environment with a str"
    )


@pytest.mark.parametrize(
    "read",
    [
        lambda p: Environment.from_pip_requirements("x", p / "requirements.txt"),
        lambda p: Environment.from_conda_specification("x", p / "environment.yml"),
        lambda p: CondaDependencies(p / "conda_dependencies.yml"),
        lambda p: Environment.load_from_directory(p / "saved"),
    ],
    ids=["from_pip_requirements", "from_conda_specification", "CondaDependencies", "load"],
)
def test_a_missing_file_is_a_file_not_found_error(
    tmp_path: Path, read: Callable[[Path], Any]
) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        read(tmp_path)

    assert isinstance(caught.value, MissingFile) and isinstance(caught.value, KilnError)
    assert f"{tmp_path}/" in str(caught.value) and "does not exist" in str(caught.value)


def test_saving_over_a_saved_definition_is_a_file_exists_error(tmp_path: Path) -> None:
    env = Environment("saved")
    env.save_to_directory(tmp_path)

    with pytest.raises(FileExistsError) as caught:
        env.save_to_directory(tmp_path)

    assert isinstance(caught.value, AlreadyExists) and isinstance(caught.value, Conflict)
    assert "already exists; pass --force (overwrite=True)" in str(caught.value)
    env.save_to_directory(tmp_path, overwrite=True)


def test_the_cli_reports_a_missing_file_as_before(tmp_path: Path) -> None:
    result = run_kiln("env", "hash", "-f", str(tmp_path / "requirements.txt"), check=False)

    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"{tmp_path}/requirements.txt does not exist")
