"""A ``.whl`` named in a definition that is not a wheel (issue 15, item 11): a 1-byte file was
registered and failed only at build. Register refuses it with one line naming the file, as
written in the definition, and why, and stores nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from kilntesting.builds import make_wheel
from kilntesting.cli import run_kiln

WHEEL = "demo-1.0-py3-none-any.whl"
FIX = "build it again (`pip wheel`, `uv build`) or name the right file"


def _register(tmp_path: Path, write: object) -> tuple[int, list[str], list[Path]]:
    run_kiln("init", str(tmp_path))
    folder = tmp_path / "src"
    (folder / "wheels").mkdir(parents=True)
    assert callable(write)
    write(folder / "wheels" / WHEEL)
    (folder / "kiln.yaml").write_text(
        f'name: local\npython:\n  version: "3.11"\n  pip:\n    packages: [./wheels/{WHEEL}]\n'
    )
    result = run_kiln("env", "register", "-d", "src", cwd=tmp_path, check=False)
    stored = sorted(p for p in (tmp_path / ".kiln" / "artifacts").rglob("*") if p.is_file())
    return result.returncode, result.stderr.strip().splitlines(), stored


def _zip_without_wheel_metadata(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo/__init__.py", "")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")


@pytest.mark.parametrize(
    ("write", "why"),
    [
        (lambda p: p.write_bytes(b"x"), "not a zip archive"),
        (lambda p: p.write_text("<html>404 Not Found</html>"), "not a zip archive"),
        (_zip_without_wheel_metadata, "it has no .dist-info/WHEEL"),
    ],
    ids=["one-byte", "html-page", "zip-without-WHEEL"],
)
def test_a_file_that_is_not_a_wheel_is_refused_at_register(
    tmp_path: Path, write: object, why: str
) -> None:
    code, lines, stored = _register(tmp_path, write)
    assert code == 2
    assert lines == [f"kiln: error: ./wheels/{WHEEL} is not a wheel: {why}; {FIX}"]
    assert stored == []


def test_a_real_wheel_still_registers(tmp_path: Path) -> None:
    def real(path: Path) -> None:
        path.write_bytes(make_wheel(tmp_path / "made", "demo", "1.0").read_bytes())

    code, lines, stored = _register(tmp_path, real)
    assert code == 0, lines
    assert len(stored) == 1
