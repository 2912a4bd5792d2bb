"""The one YAML loader (issue 15, items 5 and 8), and JSON under the same depth bound: alias
bombs, deep nesting and any other text end in one clear InvalidDefinition (exit 2) naming the
file and the fix, before anything is stored; what definitions really use still loads."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.environment.files import MAX_DEFINITION_FILE_BYTES
from kiln.errors import InvalidDefinition
from kiln.formats.base import compose_yaml, parse_json, parse_yaml
from kiln.formats.dispatch import load_path
from kiln.formats.yaml_loader import MAX_ALIAS_VALUES, MAX_YAML_DEPTH
from kilntesting.cli import error_of, run_kiln

BOMB_FIX = "write the values out instead of nesting aliases"
DEEP_FIX = "flatten it"


def alias_bomb(levels: int = 7) -> str:
    """The reported Azure v2 environment.yaml: `tags` whose aliases nest aliases ``levels``
    deep (nine of each), so the last one repeats 9**levels strings (7 levels: 4.8 million)."""
    lines = ["name: bomb", "image: mcr.microsoft.com/azureml/base:1", "tags:"]
    lines.append("  l0: &l0 [" + ", ".join(["xxxxxxxxxx"] * 9) + "]")
    for level in range(1, levels):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nested(levels: int, *, flow: str = "[]") -> str:
    return "a: " + flow[0] * levels + flow[1] * levels + "\n"


def _registry_rows(project: Path) -> dict[str, int]:
    with sqlite3.connect(project / ".kiln" / "registry.db") as connection:
        tables = [
            t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _stored(project: Path) -> tuple[dict[str, int], list[Path]]:
    return _registry_rows(project), sorted((project / ".kiln" / "artifacts").rglob("*"))


# --- the reported cases, through the real CLI ---------------------------------------------------


def test_an_azure_v2_alias_bomb_is_refused_at_register_and_changes_nothing(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path))
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "environment.yaml").write_text(alias_bomb(7))
    assert len(alias_bomb(7)) < 600  # a few hundred bytes, as reported
    before = _stored(tmp_path)
    result = run_kiln("env", "register", "-d", "bomb", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert "environment.yaml" in message and BOMB_FIX in message
    assert _stored(tmp_path) == before


def test_yaml_nested_100000_levels_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path))
    (tmp_path / "kiln.yaml").write_text(nested(100_000))
    before = _stored(tmp_path)
    result = run_kiln("env", "register", "-f", "kiln.yaml", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert "\n" not in message and "RecursionError" not in message, message
    assert "kiln.yaml" in message and DEEP_FIX in message
    assert _stored(tmp_path) == before


# --- every format reads through the bounded loader ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("kiln.yaml", "name: k\n"),
        ("environment.yaml", "name: v\nimage: python:3.11-slim\n"),  # Azure v2
        ("environment.yml", "name: c\ndependencies: [python=3.11]\n"),  # conda
    ],
)
def test_every_yaml_format_refuses_bombs_and_deep_nesting(
    tmp_path: Path, name: str, head: str
) -> None:
    bomb = alias_bomb(9).replace("name: bomb\nimage: mcr.microsoft.com/azureml/base:1\n", head)
    path = tmp_path / name
    path.write_text(bomb)
    assert BOMB_FIX in error_of(load_path, path)
    path.write_text(head + "extra: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n")
    assert DEEP_FIX in error_of(load_path, path)


def test_an_azure_v2_conda_file_reads_through_the_bounded_loader(tmp_path: Path) -> None:
    (tmp_path / "environment.yaml").write_text(
        "name: v\nimage: python:3.11-slim\nconda_file: conda.yaml\n"
    )
    (tmp_path / "conda.yaml").write_text("name: c\ndependencies: " + nested(5_000)[3:])
    assert DEEP_FIX in error_of(load_path, tmp_path / "environment.yaml")


# --- the bounds, at their edges -------------------------------------------------------------------


def test_depth_up_to_the_bound_loads_and_one_more_is_refused() -> None:
    deepest = parse_yaml("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, source="f.yaml")
    for _ in range(MAX_YAML_DEPTH - 1):
        (deepest,) = deepest
    assert deepest == []
    message = error_of(
        parse_yaml, "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1), source="f.yaml"
    )
    assert message == (
        f"f.yaml: nesting deeper than {MAX_YAML_DEPTH} levels at line 1, column "
        f"{MAX_YAML_DEPTH + 1}; a definition needs a few levels: flatten it"
    )


def test_block_nesting_is_bounded_like_flow_nesting() -> None:
    text = (
        "".join(f"{' ' * level}k{level}:\n" for level in range(MAX_YAML_DEPTH + 5))
        + " " * 200
        + "v\n"
    )
    assert DEEP_FIX in error_of(parse_yaml, text, source="f.yaml")


def test_ordinary_aliases_still_load() -> None:
    text = "base: &base {a: 1, b: [x, y]}\none: *base\ntwo: *base\nlist: [*base, *base]\n"
    data = parse_yaml(text, source="f.yaml")
    assert data["one"] == data["two"] == data["list"][1] == {"a": 1, "b": ["x", "y"]}


def test_aliases_may_repeat_up_to_the_bound_and_no_more() -> None:
    # An anchored list of n scalars counts n + 1 values each time an alias repeats it.
    size = 99
    per_alias = size + 1
    allowed = MAX_ALIAS_VALUES // per_alias
    anchor = "a: &v [" + ", ".join(["x"] * size) + "]\n"
    assert (
        len(parse_yaml(anchor + "b: [" + ", ".join(["*v"] * allowed) + "]\n", source="f")["b"])
        == allowed
    )
    message = error_of(
        parse_yaml, anchor + "b: [" + ", ".join(["*v"] * (allowed + 1)) + "]\n", source="f"
    )
    assert message == (
        f"f: the aliases (*name) up to line 2 repeat over {MAX_ALIAS_VALUES:,} values (an alias "
        "bomb?); write the values out instead of nesting aliases"
    )


def test_the_bomb_is_refused_at_once_whatever_its_depth() -> None:
    for levels in (7, 9, 30):
        assert BOMB_FIX in error_of(parse_yaml, alias_bomb(levels), source="environment.yaml")


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert error_of(parse_yaml, "a: &x [1, *x]\n", source="f.yaml") == (
        "f.yaml: the alias at line 1 repeats the value it is inside of, which never ends; "
        "write the value out instead"
    )


def test_compose_is_bounded_too() -> None:
    assert DEEP_FIX in error_of(compose_yaml, nested(100_000), source="f.yaml")
    assert BOMB_FIX in error_of(compose_yaml, alias_bomb(7), source="f.yaml")


def test_text_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "a: " + "x" * MAX_DEFINITION_FILE_BYTES
    assert error_of(parse_yaml, text, source="f.yaml").startswith(
        f"f.yaml is {len(text):,} characters, over the {MAX_DEFINITION_FILE_BYTES:,} limit"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 2024-02-30\n", "f.yaml is not valid YAML at line 1, column 4: day is out of range"),
        ("a: !!int x\n", "f.yaml is not valid YAML at line 1, column 4: invalid literal for int()"),
        ("? [a]\n: b\n", "f.yaml: a list used as a key at line 1; keys must be plain values"),
        ("a: \x00\n", "f.yaml is not valid YAML: character U+0000 at position 3 is a special"),
        ("a: 1\na: 2\n", "f.yaml: duplicate key `a` at line 2; keep one of them"),
        ("a: !!python/name:os.system x\n", "f.yaml is not valid YAML at line 1, column 4: "),
    ],
)
def test_text_python_cannot_build_is_invalid_yaml_not_a_crash(text: str, message: str) -> None:
    assert error_of(parse_yaml, text, source="f.yaml").startswith(message)


# --- any text either loads or is refused with one line ----------------------------------------

_YAML_PIECES = st.sampled_from(
    ["&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ", ", ": ", "- ", "? ", "\n", "  ", "'", '"',
     "#", "!!", "!!int ", "!!binary ", "!!set ", "!!omap ", "<<: ", "---\n", "...\n", "%YAML 1.1\n",
     "|\n", ">-\n", "\t", "\\", "x", "1", "2024-02-30", "0x1F", "1e400", "~", "\x00", "\ufeff"]
)  # fmt: skip
_TEXTS = st.one_of(
    st.text(max_size=200), st.lists(_YAML_PIECES | st.text(max_size=3), max_size=60).map("".join)
)


# A few seconds in CI; KILN_FUZZ_EXAMPLES=10000 searches longer by hand.
@settings(
    max_examples=int(os.environ.get("KILN_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=_TEXTS)
def test_any_text_loads_or_raises_invalid_definition(text: str) -> None:
    try:
        parse_yaml(text, source="f.yaml")
    except InvalidDefinition as exc:
        assert "\n" not in exc.message and exc.message.startswith("f.yaml"), exc.message


# --- JSON (Azure v1) is bounded the same way ----------------------------------------------------


def test_an_azure_v1_json_nested_100000_levels_is_a_clear_error_not_a_crash(
    tmp_path: Path,
) -> None:
    run_kiln("init", str(tmp_path))
    (tmp_path / "v1").mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "v1" / "azureml_environment.json").write_text(
        '{"name": "x", "python": {"condaDependencies": ' + deep + "}}"
    )
    before = _stored(tmp_path)
    result = run_kiln("env", "register", "-d", "v1", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "kiln: error: v1/azureml_environment.json: nesting deeper than 100 levels; a "
        "definition needs a few levels: flatten it"
    )
    assert _stored(tmp_path) == before


def test_json_depth_up_to_the_bound_loads_and_one_more_is_refused() -> None:
    assert parse_json("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, source="f.json")
    too_deep = "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1)
    assert DEEP_FIX in error_of(parse_json, too_deep, source="f.json")
    assert parse_json('{"a": [1, {"b": null}]}', source="f.json") == {"a": [1, {"b": None}]}


@pytest.mark.parametrize("parse", [parse_json, parse_yaml])
def test_a_number_python_will_not_convert_is_invalid_not_a_crash(parse: Callable[..., Any]) -> None:
    assert error_of(parse, "1" * 5000, source="f").endswith(
        "a number has more than 4,300 digits; quote it if it is text"
    )


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=100),
        st.lists(st.sampled_from(list('[]{}",:0e-1.n\\u ')), max_size=60).map("".join),
    )
)
def test_any_text_loads_as_json_or_raises_invalid_definition(text: str) -> None:
    try:
        parse_json(text, source="f.json")
    except InvalidDefinition as exc:
        assert "\n" not in exc.message and exc.message.startswith("f.json"), exc.message


_DEFINITION_PIECES = st.sampled_from(
    ["name: ", "image: ", "tags: ", "dependencies: ", "channels: ", "python: ", "pip: ",
     "packages: ", "version: ", "conda_file: ", "build: ", "path: ", "docker: ", "os_type: ",
     "environment_variables: ", "&a ", "*a", "[", "]", "{", "}", ", ", ": ", "- ", "\n", "  ",
     "x", "1", "~", "3.11", "'", "!!set ", "? ", "numpy==1.26.4", "conda.yaml", "pip:"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["kiln.yaml", "environment.yaml", "environment.yml", "conda.yaml"]),
    text=st.lists(_DEFINITION_PIECES | st.text(max_size=3), max_size=40).map("".join),
)
def test_any_text_in_a_yaml_definition_loads_or_raises_invalid_definition(
    name: str, text: str
) -> None:
    """Past the loader too: every YAML format turns whatever it was given into Kiln's error."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text)
        try:
            load_path(path)
        except InvalidDefinition as exc:
            assert "\n" not in exc.message, exc.message
