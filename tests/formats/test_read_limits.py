"""Definition files are read with a bound (issue 15): only a regular file is read, and never
more than the size limit, whatever the file claims or becomes while it is read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kiln.environment.files import MAX_DEFINITION_FILE_BYTES, read_limited
from kiln.formats.dispatch import load_path
from kilntesting.cli import KILN, error_of, run_kiln


def test_a_fifo_named_as_a_conda_file_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path))
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "environment.yaml").write_text(
        "name: v\nimage: python:3.11-slim\nconda_file: conda.yaml\n"
    )
    os.mkfifo(folder / "conda.yaml", 0o600)  # nobody ever writes: reading it would wait forever
    result = subprocess.run(
        [*KILN, "env", "register", "-d", "env"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"kiln: error: `conda_file`: {(folder / 'conda.yaml').resolve()} is not a regular file; "
        "name a file"
    )


def test_a_device_is_not_read_as_a_definition(tmp_path: Path) -> None:
    assert error_of(read_limited, Path("/dev/zero"), field="kiln.yaml") == (
        "`kiln.yaml`: /dev/zero is not a regular file; name a file"
    )


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"#" * MAX_DEFINITION_FILE_BYTES)
    assert len(read_limited(path, field="requirements.txt")) == MAX_DEFINITION_FILE_BYTES
    with path.open("ab") as handle:
        handle.write(b"#")
    assert error_of(read_limited, path, field="requirements.txt") == (
        f"`requirements.txt`: {path} is {MAX_DEFINITION_FILE_BYTES + 1:,} bytes, over the "
        f"{MAX_DEFINITION_FILE_BYTES:,}-byte limit for definition files; is this the right file?"
    )


def test_a_folder_named_like_a_definition_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "env" / "conda.yaml").mkdir(parents=True)
    (tmp_path / "env" / "environment.yaml").write_text(
        "name: v\nimage: python:3.11-slim\nconda_file: conda.yaml\n"
    )
    message = error_of(load_path, tmp_path / "env" / "environment.yaml")
    assert message.endswith("conda.yaml is a folder, not a file")
