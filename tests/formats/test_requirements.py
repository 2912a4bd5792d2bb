"""requirements.txt: pip's file format read into a definition, written back, hashed by content."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_hash
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.files import MAX_DEFINITION_FILE_BYTES
from kiln.errors import InvalidDefinition
from kiln.formats import requirements

HASH_A = "a" * 64
HASH_B = "0123456789abcdef" * 4
HASH_C = "c" * 64
WHEEL = "mylib-0.1-py3-none-any.whl"
TORCH = (
    "torch @ https://download.pytorch.org/whl/cpu/torch-2.3.0%2Bcpu-cp311-cp311-linux_x86_64.whl"
)
TOP = f"""\
# Project requirements
--index-url https://pypi.example.com/simple
--extra-index-url=https://${{PIP_USER}}:${{PIP_TOKEN}}@private.example.com/simple   # private
-f https://download.pytorch.org/whl/torch_stable.html
--pre

-c constraints/pins.txt
numpy==1.26.4  # pinned for the ABI
pandas>=2.0,<3 ; python_version >= "3.9"
requests[socks,security]==2.31.0 \\
    --hash=sha256:{HASH_A} \\
    --hash sha256:{HASH_B}
-r reqs/base.txt
{TORCH}
git+https://github.com/org/tool.git@v1.2#egg=tool
tomli; python_version < "3.11"
scikit-\\
learn==1.4.2
"""
BASE = f"""\
# shared by every service
-r nested/extra.txt

./wheels/{WHEEL}
pyyaml>=6  # trailing comment
"""
EXTRA = "rich==13.7.1\n"
PINS = f"# pins\nurllib3<2\ncertifi==2024.2.2 --hash=sha256:{HASH_C}\n"
WHEEL_BYTES = b"PK\x03\x04 not really a zip, but Kiln only hashes the bytes"


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return folder / "requirements.txt"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(
        tmp_path / "my project!",
        {
            "requirements.txt": TOP,
            "reqs/base.txt": BASE,
            "reqs/nested/extra.txt": EXTRA,
            f"reqs/wheels/{WHEEL}": WHEEL_BYTES,
            "constraints/pins.txt": PINS,
        },
    )


def error(path: Path) -> str:
    with pytest.raises(InvalidDefinition) as caught:
        requirements.load(path)
    return caught.value.message


# Reading ---------------------------------------------------------------------------------------


def test_load_flattens_includes_and_keeps_every_pip_detail(project: Path) -> None:
    loaded = requirements.load(project)
    pip = loaded.definition.python.pip
    assert pip.packages == [
        "numpy==1.26.4",
        'pandas>=2.0,<3 ; python_version >= "3.9"',
        f"requests[socks,security]==2.31.0 --hash=sha256:{HASH_A} --hash=sha256:{HASH_B}",
        "rich==13.7.1",
        f"./reqs/wheels/{WHEEL}",
        "pyyaml>=6",
        TORCH,
        "git+https://github.com/org/tool.git@v1.2#egg=tool",
        'tomli; python_version < "3.11"',
        "scikit-learn==1.4.2",
    ]
    assert pip.constraints == ["urllib3<2", f"certifi==2024.2.2 --hash=sha256:{HASH_C}"]
    assert pip.index_url == "https://pypi.example.com/simple"
    assert pip.extra_index_urls == ["https://${PIP_USER}:${PIP_TOKEN}@private.example.com/simple"]
    assert pip.find_links == ["https://download.pytorch.org/whl/torch_stable.html"]
    assert pip.pre is True
    assert pip.file_digests == {f"./reqs/wheels/{WHEEL}": hashlib.sha256(WHEEL_BYTES).hexdigest()}


def test_load_names_the_environment_and_reports_files_and_warnings(project: Path) -> None:
    loaded = requirements.load(project)
    definition = loaded.definition
    assert definition.name == "my-project"
    assert definition.version is None
    assert definition.python.version is None
    assert definition.python.conda.packages == []
    root = project.parent.resolve()
    assert loaded.files == (
        root / "requirements.txt",
        root / "constraints/pins.txt",
        root / "reqs/base.txt",
        root / "reqs/nested/extra.txt",
    )
    assert loaded.warnings == (
        f"{project}: 1 of 10 packages have --hash; pip then requires a hash on every package "
        "and the build will fail",
    )
    assert requirements.load(project, name="svc").definition.name == "svc"


def test_default_name_falls_back_to_environment(tmp_path: Path) -> None:
    from kiln.formats.base import name_from_folder

    assert name_from_folder(tmp_path / "__") == "environment"
    assert name_from_folder(tmp_path / "_x y") == "x-y"


def test_load_writes_nothing(project: Path) -> None:
    before = sorted(p for p in project.parent.rglob("*"))
    requirements.load(project)
    assert sorted(p for p in project.parent.rglob("*")) == before


def test_parse_lines_is_the_same_reading(project: Path) -> None:
    parsed = requirements.parse_lines(project)
    assert parsed.packages == tuple(requirements.load(project).definition.python.pip.packages)
    assert parsed.constraints == ("urllib3<2", f"certifi==2024.2.2 --hash=sha256:{HASH_C}")
    assert parsed.pre is True
    with pytest.raises(AttributeError):
        parsed.pre = False  # type: ignore[misc]


def test_wheel_content_enters_the_hash_but_its_folder_does_not(project: Path) -> None:
    original = build_hash(requirements.load(project).definition)
    moved = project.parent.parent / "elsewhere"
    shutil.move(project.parent, moved)
    assert build_hash(requirements.load(moved / "requirements.txt").definition) == original
    (moved / "reqs/wheels" / WHEEL).write_bytes(WHEEL_BYTES + b"!")
    assert build_hash(requirements.load(moved / "requirements.txt").definition) != original


def test_included_content_enters_the_hash(project: Path) -> None:
    original = build_hash(requirements.load(project).definition)
    (project.parent / "reqs/nested/extra.txt").write_text("rich==13.7.0\n")
    assert build_hash(requirements.load(project).definition) != original


def test_comment_never_becomes_a_package_and_ends_a_continuation(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"requirements.txt": "a==1 \\\n# note\nb==2\n  # indented\nc==1\t# tab\n"}
    )
    assert requirements.load(path).definition.python.pip.packages == ["a==1", "b==2", "c==1"]


def test_single_dash_forms_and_quotes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "requirements.txt": '-rsub/more.txt\n-i "https://x.example/simple" --pre\n',
            "sub/more.txt": "a",
        },
    )
    parsed = requirements.parse_lines(path)
    assert (parsed.packages, parsed.index_url, parsed.pre) == (
        ("a",),
        "https://x.example/simple",
        True,
    )


def test_the_include_decides_constraint_or_requirement_as_in_pip(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "requirements.txt": "-c c/pins.txt\n",
            "c/pins.txt": "urllib3<2\n-r ../reqs.txt\n--pre\n",
            "reqs.txt": "requests\n",
        },
    )
    parsed = requirements.parse_lines(path)
    assert (parsed.constraints, parsed.packages, parsed.pre) == (
        ("urllib3<2",),
        ("requests",),
        True,
    )


def test_windows_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes("\ufeffnumpy\r\npandas \\\r\n  >=2  # x\r\n".encode())
    assert requirements.load(path).definition.python.pip.packages == ["numpy", "pandas >=2"]


def test_later_index_url_wins_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "-i https://a.example\n-i https://b.example\nx\n"})
    loaded = requirements.load(path)
    assert loaded.definition.python.pip.index_url == "https://b.example"
    assert loaded.warnings == (f"{path}:2: `-i` replaces an earlier index URL",)


# Errors ----------------------------------------------------------------------------------------


def test_include_outside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("numpy\n")
    path = write(tmp_path / "proj", {"requirements.txt": "numpy\n-r ../x.txt\n"})
    assert error(path) == (
        f"{path}:2: `-r ../x.txt` points outside {path.parent}; keep included files inside the "
        "top requirements file's folder"
    )


def test_symlink_escaping_the_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("numpy\n")
    path = write(tmp_path / "proj", {"requirements.txt": "-c sub/link.txt\n"})
    (path.parent / "sub").mkdir()
    (path.parent / "sub/link.txt").symlink_to(tmp_path / "outside.txt")
    assert error(path) == (
        f"{path}:1: `-c sub/link.txt` points outside {path.parent}; keep included files inside "
        "the top requirements file's folder"
    )


def test_include_cycle_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "requirements.txt": "a\n-r sub/b.txt\n",
            "sub/b.txt": "# b\n\n--requirement ../requirements.txt\n",
        },
    )
    assert error(path) == (
        f"{tmp_path / 'sub/b.txt'}:3: `--requirement ../requirements.txt` makes an include cycle "
        "(requirements.txt -> sub/b.txt -> requirements.txt); remove one of these includes"
    )


def test_missing_include(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "-r nope.txt\n"})
    assert (
        error(path) == f"{path}:1: `-r nope.txt`: {tmp_path.resolve() / 'nope.txt'} does not exist"
    )


def test_missing_top_file(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    assert error(path) == f"`requirements.txt`: {path} does not exist"


@pytest.mark.parametrize(
    ("line", "flag", "hint"),
    [
        (
            "--no-index",
            "--no-index",
            "; list local wheels by path, or set --index-url to your own index",
        ),
        ("--trusted-host=pypi.example.com", "--trusted-host", "; serve the index over https"),
        ("-e .", "-e", "; build a wheel and list its path instead of an editable install"),
        (
            "--editable ./src",
            "--editable",
            "; build a wheel and list its path instead of an editable install",
        ),
        ("--prefer-binary", "--prefer-binary", ""),
    ],
)
def test_unsupported_option(tmp_path: Path, line: str, flag: str, hint: str) -> None:
    path = write(tmp_path, {"requirements.txt": f"numpy\n\n{line}\n"})
    assert error(path) == (
        f"{path}:3: `{flag}` is not supported; Kiln supports -r/--requirement, -c/--constraint, "
        "-i/--index-url, --extra-index-url, -f/--find-links and --pre lines, and --hash=ALGO:HEX "
        f"after a requirement{hint}"
    )


def test_unsupported_option_after_a_requirement(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "numpy==1 --config-settings=x=y\n"})
    assert error(path) == (
        f"{path}:1: `--config-settings` after a requirement is not supported; only "
        "--hash=ALGO:HEX may follow a requirement"
    )


@pytest.mark.parametrize("value", ["sha256:abc", "md5:" + "a" * 32, ""])
def test_invalid_hash(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, {"requirements.txt": f"numpy==1 \\\n  --hash={value}\n"})
    assert error(path) == (
        f"{path}:1: `--hash={value}` is not a valid hash; write --hash=sha256:HEX with 64 hex "
        "digits (sha384 and sha512 work too)"
    )


def test_invalid_requirement_names_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "numpy\n# fine\nfoo bar baz\n"})
    message = error(path)
    assert message.startswith(
        f"{path}:3: `python.pip.packages`: 'foo bar baz' is not a valid requirement ("
    )
    assert message.endswith("write it as NAME[extras]SPEC, e.g. 'scikit-learn>=1.4'")


def test_empty_arbitrary_equality_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "numpy===\n"})
    assert error(path).startswith(f"{path}:1: `python.pip.packages`: 'numpy===' ")


def test_invalid_constraint(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"requirements.txt": "-c c.txt\n", "c.txt": "x @ https://h.example/x.whl\n"}
    )
    assert error(path) == (
        f"{tmp_path / 'c.txt'}:1: `python.pip.constraints`: 'x @ https://h.example/x.whl' is not a "
        "constraint; pip constraints are NAME SPEC, such as 'numpy<2', never a URL or a file"
    )


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_DEFINITION_FILE_BYTES + 1)
    size = f"{MAX_DEFINITION_FILE_BYTES + 1:,}"
    limit = f"{MAX_DEFINITION_FILE_BYTES:,}"
    assert error(path) == (
        f"`requirements.txt`: {path} is {size} bytes, over the {limit}-byte limit for definition "
        "files; is this the right file?"
    )
    big = tmp_path / "big.txt"
    path.rename(big)
    path.write_text("-r big.txt\n")
    assert error(path).startswith(f"{path}:1: `-r`: {big.resolve()} is {size} bytes, over")


def test_local_wheel_outside_or_missing(tmp_path: Path) -> None:
    (tmp_path / WHEEL).write_bytes(WHEEL_BYTES)
    path = write(
        tmp_path / "proj", {"requirements.txt": "-r sub/r.txt\n", "sub/r.txt": f"../../{WHEEL}\n"}
    )
    where = f"{path.parent / 'sub/r.txt'}:1: `python.pip.packages`"
    assert error(path) == (
        f"{where}: '../../{WHEEL}' points outside {path.parent}; keep local wheels inside the top "
        "requirements file's folder"
    )
    (path.parent / "sub/r.txt").write_text(f"./{WHEEL}\n")
    assert error(path) == (
        f"{where}: './{WHEEL}' does not exist (looked for {path.parent.resolve() / 'sub' / WHEEL})"
    )


def test_plain_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"requirements.txt": "--extra-index-url https://me:hunter2@h.example/simple\n"}
    )
    message = error(path)
    assert "hunter2" not in message
    assert message == (
        f"{path}:1: `--extra-index-url` URL carries a plain-text password; write "
        "https://USER:${ENV_VAR}@HOST/... so the secret is read from the environment"
    )


def test_local_find_links_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "--find-links ./wheels\n"})
    assert error(path) == (
        f"{path}:1: `--find-links ./wheels`: local --find-links folders are not supported, because "
        "their content would not enter the build hash; list each wheel by path"
    )


def test_option_without_value_and_stray_text(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": "--index-url\n"})
    assert error(path) == f"{path}:1: `--index-url` needs a value, e.g. `--index-url VALUE`"
    path.write_text("--pre numpy\n")
    assert error(path) == (
        f"{path}:1: unexpected 'numpy' after an option; put each requirement and each option on "
        "its own line"
    )


# Writing ---------------------------------------------------------------------------------------


def test_render_puts_options_first_and_names_what_is_left_out() -> None:
    definition = EnvironmentDefinition.model_validate(
        {
            "name": "svc",
            "version": "3",
            "python": {
                "version": "3.11",
                "pip": {
                    "packages": ["numpy==1.26.4", f"./w/{WHEEL}"],
                    "constraints": ["urllib3<2"],
                    "index_url": "https://pypi.example.com/simple",
                    "extra_index_urls": ["https://x.example/simple"],
                    "find_links": ["https://f.example/links"],
                    "pre": True,
                },
            },
            "environment_variables": {"A": "1"},
        }
    )
    assert requirements.render(definition) == (
        "# Written by Kiln for svc:3\n"
        "# Not expressible in a requirements file, left out: "
        "environment_variables, python.version\n"
        "--index-url https://pypi.example.com/simple\n"
        "--extra-index-url https://x.example/simple\n"
        "--find-links https://f.example/links\n"
        "--pre\n"
        "-c constraints.txt\n"
        "numpy==1.26.4\n"
        f"./w/{WHEEL}\n"
    )


def test_save_writes_constraints_beside_and_round_trips(project: Path) -> None:
    loaded = requirements.load(project).definition
    written = requirements.save(loaded, project.parent / "out.txt")
    assert written == [project.parent / "out.txt", project.parent / "constraints.txt"]
    assert (project.parent / "constraints.txt").read_text() == (
        "# Constraints for my-project, written by Kiln\n"
        f"urllib3<2\ncertifi==2024.2.2 --hash=sha256:{HASH_C}\n"
    )
    again = requirements.load(project.parent / "out.txt", name=loaded.name).definition
    assert again == loaded


def test_save_into_a_folder_and_refuse_a_clashing_name(tmp_path: Path) -> None:
    definition = EnvironmentDefinition(
        name="e", python={"pip": {"packages": ["a"], "constraints": ["a<2"]}}
    )
    assert requirements.save(definition, tmp_path / "out") == [
        tmp_path / "out/requirements.txt",
        tmp_path / "out/constraints.txt",
    ]
    with pytest.raises(InvalidDefinition, match=re.escape("the constraints go to constraints.txt")):
        requirements.save(definition, tmp_path / "constraints.txt")


# Round trip ------------------------------------------------------------------------------------

NAMES = st.sampled_from(["numpy", "scikit-learn", "Foo_Bar", "a", "zope.interface"])
EXTRAS = st.lists(st.sampled_from(["socks", "dev", "Test_Extra"]), max_size=2, unique=True)
SPECS = st.sampled_from(["", "==1.2", ">=1,<2", "~=2.0", "!=1.5", "===1.0-custom", " >= 3"])
MARKERS = st.sampled_from(["", '; python_version < "3.11"', ' ; sys_platform == "linux"'])
HEXES = st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())
HASHES = st.lists(HEXES.map(lambda h: f"--hash=sha256:{h}"), max_size=2)
URLS = st.sampled_from(
    [
        "https://files.example.com/pkgs/x-1.0-py3-none-any.whl",
        "git+https://github.com/org/tool.git@v1#egg=tool",
        "tool @ https://${TOKEN}@files.example.com/tool-2.0.tar.gz",
    ]
)


@st.composite
def entries(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:
        base = draw(URLS)
    else:
        extras = draw(EXTRAS)
        base = (
            draw(NAMES) + (f"[{','.join(extras)}]" if extras else "") + draw(SPECS) + draw(MARKERS)
        )
    return " ".join([base, *draw(HASHES)])


INDEXES = st.sampled_from(["https://pypi.example.com/simple", "https://u:${PW}@p.example/simple"])


@st.composite
def definitions(draw: st.DrawFn) -> EnvironmentDefinition:
    pip = {
        "packages": draw(st.lists(entries(), max_size=6)),
        "constraints": draw(st.lists(NAMES.map(lambda n: f"{n}<9"), max_size=3)),
        "index_url": draw(st.none() | INDEXES),
        "extra_index_urls": draw(st.lists(INDEXES, max_size=2)),
        "find_links": draw(st.lists(st.just("https://links.example/all.html"), max_size=1)),
        "pre": draw(st.booleans()),
    }
    return EnvironmentDefinition.model_validate({"name": "env", "python": {"pip": pip}})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_write_then_read_is_the_identity(definition: EnvironmentDefinition) -> None:
    with tempfile.TemporaryDirectory() as folder:
        first = Path(folder, "first")
        requirements.save(definition, first)
        d1 = requirements.load(first / "requirements.txt", name="env").definition
        requirements.save(d1, Path(folder, "second"))
        d2 = requirements.load(Path(folder, "second/requirements.txt"), name="env").definition
    assert d1 == d2
    assert build_hash(definition) == build_hash(d1)
