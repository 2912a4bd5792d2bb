"""Content digests of build contexts and the path-safety rules, on real folders."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from kiln.environment.files import (
    MAX_CONTEXT_BYTES,
    MAX_DEFINITION_FILE_BYTES,
    context_files,
    file_digest,
    read_limited,
    read_text_limited,
    resolve_inside,
    tree_digest,
)
from kiln.errors import InvalidDefinition
from kilntesting.cli import error_of


def make_context(root: Path, files: dict[str, str] | None = None) -> Path:
    """A small build context: a Dockerfile, a script and a nested file."""
    contents = files or {
        "Dockerfile": "FROM python:3.11-slim\nCOPY app /app\n",
        "app/main.py": "print('hello')\n",
        "app/conf/settings.toml": "workers = 2\n",
    }
    for relative, text in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# --- tree_digest -----------------------------------------------------------------------------


def test_same_content_in_two_folders_gives_the_same_digest(tmp_path: Path) -> None:
    first = make_context(tmp_path / "one")
    second = make_context(tmp_path / "elsewhere" / "two")
    assert tree_digest(first) == tree_digest(second)
    assert len(tree_digest(first)) == 64


def test_moving_a_folder_keeps_its_digest(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    before = tree_digest(context)
    moved = shutil.move(context, tmp_path / "deeper" / "renamed")
    assert tree_digest(Path(moved)) == before


def test_a_content_change_changes_the_digest(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    before = tree_digest(context)
    (context / "app" / "main.py").write_text("print('bye')\n")
    assert tree_digest(context) != before


def test_a_rename_inside_changes_the_digest(tmp_path: Path) -> None:
    """Paths inside the context are part of what Docker builds (COPY app/main.py)."""
    context = make_context(tmp_path / "ctx")
    before = tree_digest(context)
    (context / "app" / "main.py").rename(context / "app" / "server.py")
    assert tree_digest(context) != before


def test_an_added_file_changes_the_digest(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    before = tree_digest(context)
    (context / "empty.txt").write_text("")
    assert tree_digest(context) != before


def test_the_executable_bit_changes_the_digest(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"Dockerfile": "FROM x\n", "entry.sh": "#!/bin/sh\n"})
    script = context / "entry.sh"
    script.chmod(0o644)
    plain = tree_digest(context)
    script.chmod(0o755)
    executable = tree_digest(context)
    assert executable != plain
    script.chmod(0o644)
    assert tree_digest(context) == plain


def test_only_the_owner_executable_bit_counts_as_git_records_it(tmp_path: Path) -> None:
    """Group/other execute bits and read/write bits do not count: the digest is a property of
    the file, not of which user computes it (root may execute any file with any x bit)."""
    a = make_context(tmp_path / "a", {"Dockerfile": "FROM x\n", "run.sh": "#!/bin/sh\n"})
    b = make_context(tmp_path / "b", {"Dockerfile": "FROM x\n", "run.sh": "#!/bin/sh\n"})
    (a / "run.sh").chmod(0o644)
    (b / "run.sh").chmod(0o611)  # group and other may execute, the owner may not
    assert tree_digest(a) == tree_digest(b)
    (b / "run.sh").chmod(0o700)
    (a / "run.sh").chmod(0o755)
    assert tree_digest(a) == tree_digest(b)


def test_gitignored_files_are_left_out(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    (context / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n")
    (context / "debug.log").write_text("one\n")
    (context / "build").mkdir()
    (context / "build" / "out.bin").write_bytes(b"\x00\x01")
    (context / "keep.log").write_text("kept\n")
    before = tree_digest(context)
    (context / "debug.log").write_text("two\n")
    (context / "build" / "out.bin").write_bytes(b"\x02")
    (context / "build" / "new.bin").write_bytes(b"\x03")
    assert tree_digest(context) == before
    (context / "keep.log").write_text("changed\n")  # negated: kept, so it counts
    assert tree_digest(context) != before
    kept = [relative for relative, _ in context_files(context)]
    assert kept == [
        ".gitignore",
        "Dockerfile",
        "app/conf/settings.toml",
        "app/main.py",
        "keep.log",
    ]


def test_kilnignore_is_honoured(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    (context / ".kilnignore").write_text("data/\n*.parquet\n")
    (context / "data").mkdir()
    (context / "data" / "big.csv").write_text("a,b\n")
    (context / "app" / "table.parquet").write_bytes(b"PAR1")
    before = tree_digest(context)
    (context / "data" / "big.csv").write_text("a,b\n1,2\n")
    (context / "app" / "table.parquet").write_bytes(b"PAR1PAR1")
    assert tree_digest(context) == before


def test_git_kiln_and_pycache_folders_are_always_left_out(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    before = tree_digest(context)
    for folder in (".git", ".kiln", "app/__pycache__"):
        (context / folder).mkdir(parents=True)
        (context / folder / "HEAD").write_text("ref: refs/heads/main\n")
    assert tree_digest(context) == before
    assert all(not r.startswith((".git/", ".kiln/")) for r, _ in context_files(context))


def test_the_digest_follows_the_documented_recipe(tmp_path: Path) -> None:
    """sha256 over "path NUL exec-bit NUL sha256(content) LF" per kept file, sorted by path:
    pinned so a change to the recipe is a deliberate one (it changes every build hash)."""
    context = make_context(tmp_path / "ctx", {"b.txt": "B", "a/z.txt": "Z"})
    expected = hashlib.sha256()
    for relative, text in sorted({"b.txt": "B", "a/z.txt": "Z"}.items()):
        content = hashlib.sha256(text.encode()).hexdigest()
        expected.update(f"{relative}\0-\0{content}\n".encode())
    assert tree_digest(context) == expected.hexdigest()


def test_a_symlink_inside_the_context_is_hashed_by_its_target(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    (context / "link.py").symlink_to("app/main.py")
    with_link = tree_digest(context)
    (context / "link.py").unlink()
    (context / "link.py").write_text("print('hello')\n")
    assert tree_digest(context) == with_link


def test_a_symlink_leaving_the_context_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("not part of the build\n")
    context = make_context(tmp_path / "ctx")
    (context / "app" / "escape.txt").symlink_to(secret)
    assert error_of(tree_digest, context) == (
        f"`docker.build_context`: app/escape.txt is a symlink to {secret}, outside the build "
        "context; copy it in or add it to .kilnignore"
    )
    (context / ".kilnignore").write_text("app/escape.txt\n")
    assert len(tree_digest(context)) == 64


def test_a_symlinked_folder_leaving_the_context_is_an_error(tmp_path: Path) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "lib.py").write_text("x = 1\n")
    context = make_context(tmp_path / "ctx")
    (context / "vendor").symlink_to(outside, target_is_directory=True)
    assert error_of(tree_digest, context) == (
        f"`docker.build_context`: vendor is a symlink to {outside}, outside the build "
        "context; copy it in or add it to .kilnignore"
    )
    (context / ".kilnignore").write_text("vendor\n")
    assert len(tree_digest(context)) == 64


def test_a_symlinked_folder_inside_the_context_is_not_walked_twice(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    (context / "alias").symlink_to(context / "app", target_is_directory=True)
    kept = [relative for relative, _ in context_files(context)]
    assert kept == ["Dockerfile", "app/conf/settings.toml", "app/main.py"]


def test_a_missing_context_folder_is_an_error(tmp_path: Path) -> None:
    assert error_of(tree_digest, tmp_path / "nope") == (
        f"`docker.build_context`: {tmp_path / 'nope'} is not a folder"
    )


def test_an_oversized_context_is_refused_before_it_is_read(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    with (context / "weights.bin").open("wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_CONTEXT_BYTES + 1)
    message = error_of(tree_digest, context)
    assert message == (
        f"`docker.build_context`: {context} holds over {MAX_CONTEXT_BYTES:,} bytes; "
        "list large data in .kilnignore"
    )
    (context / ".kilnignore").write_text("*.bin\n")
    small = make_context(tmp_path / "small")
    (small / ".kilnignore").write_text("*.bin\n")  # the ignore file itself is content
    assert tree_digest(context) == tree_digest(small)


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x-1.0-py3-none-any.whl"
    data = bytes(range(256)) * 9000  # several read blocks' worth
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()


# --- resolve_inside --------------------------------------------------------------------------


def test_resolve_inside_accepts_paths_that_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert (
        resolve_inside(tmp_path, "sub/../sub/x.whl", field="f") == tmp_path.resolve() / "sub/x.whl"
    )
    assert resolve_inside(tmp_path, "./x.whl", field="f") == tmp_path.resolve() / "x.whl"
    assert resolve_inside(tmp_path, ".", field="f") == tmp_path.resolve()


@pytest.mark.parametrize("relative", ["../x.whl", "sub/../../x.whl", "/etc/passwd", "~/x.whl"])
def test_resolve_inside_refuses_escapes(tmp_path: Path, relative: str) -> None:
    base = tmp_path / "definition"
    base.mkdir()
    assert error_of(resolve_inside, base, relative, field="python.pip.packages[0]") == (
        f"`python.pip.packages[0]`: {relative!r} points outside {base.resolve()}; keep "
        "referenced files inside the definition's directory"
    )


def test_resolve_inside_refuses_a_symlink_that_points_outside(tmp_path: Path) -> None:
    base = tmp_path / "definition"
    (base / "wheels").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.whl").write_bytes(b"PK")
    (base / "wheels" / "x.whl").symlink_to(outside / "x.whl")
    (base / "linked").symlink_to(outside, target_is_directory=True)
    for relative in ("wheels/x.whl", "linked/x.whl"):
        message = error_of(resolve_inside, base, relative, field="python.pip.packages[1]")
        assert message.startswith(f"`python.pip.packages[1]`: {relative!r} points outside ")


def test_resolve_inside_accepts_a_symlink_that_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "real.whl").write_bytes(b"PK")
    (tmp_path / "alias.whl").symlink_to(tmp_path / "real.whl")
    assert resolve_inside(tmp_path, "alias.whl", field="f") == tmp_path.resolve() / "real.whl"


# --- reading definition files ----------------------------------------------------------------


def test_read_limited_refuses_oversized_missing_and_folder_paths(tmp_path: Path) -> None:
    big = tmp_path / "kiln.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_DEFINITION_FILE_BYTES + 1)
    assert error_of(read_limited, big, field="kiln.yaml") == (
        f"`kiln.yaml`: {big} is {MAX_DEFINITION_FILE_BYTES + 1:,} bytes, over the "
        f"{MAX_DEFINITION_FILE_BYTES:,}-byte limit for definition files; is this the right file?"
    )
    missing = tmp_path / "nope.yaml"
    assert error_of(read_limited, missing, field="conda_file") == (
        f"`conda_file`: {missing} does not exist"
    )
    assert error_of(read_limited, tmp_path, field="conda_file") == (
        f"`conda_file`: {tmp_path} is a folder, not a file"
    )


def test_read_text_limited_strips_a_bom_and_refuses_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "kiln.yaml"
    path.write_bytes("\ufeffname: café\n".encode())
    assert read_text_limited(path, field="kiln.yaml") == "name: café\n"
    path.write_bytes("name: café\n".encode("latin-1"))
    assert error_of(read_text_limited, path, field="kiln.yaml") == (
        f"`kiln.yaml`: {path} is not UTF-8 text (invalid continuation byte at byte 9); "
        "save it as UTF-8"
    )


def test_special_files_in_a_context_are_refused(tmp_path: Path) -> None:
    import os

    from kiln.environment.files import tree_digest

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    os.mkfifo(context / "pipe")
    with pytest.raises(InvalidDefinition, match="pipe is not a regular file"):
        tree_digest(context)
    (context / "pipe").unlink()
    (context / "gone").symlink_to(context / "missing")
    with pytest.raises(InvalidDefinition, match="gone is a symlink to nothing"):
        tree_digest(context)
    (context / ".kilnignore").write_text("gone\n")
    assert len(tree_digest(context)) == 64
