"""A key written twice in a JSON file Kiln reads (issue 15, item 11): ``json`` keeps the last
one silently, so an Azure v1 ``azureml_environment.json`` with two ``name`` keys registered
under a name its author may not have meant. Every JSON goes through the one bounded reader
(``formats.base.parse_json``), which refuses the duplicate with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidDefinition
from kiln.formats.base import parse_json
from kilntesting.cli import run_kiln


def test_an_azure_v1_json_with_two_name_keys_is_one_line_naming_the_key(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path))
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "azureml_environment.json").write_text(
        '{"name": "first", "name": "second", "python": {"interpreterPath": "python"}}'
    )
    result = run_kiln("env", "register", "-d", "v1", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "kiln: error: v1/azureml_environment.json: duplicate key `name`; keep one of them"
    ]
    listed = run_kiln("env", "list", "--json", cwd=tmp_path).stdout
    assert "first" not in listed and "second" not in listed


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"a": {"b": 1, "b": 2}}', "`b`"),
        ('[{"x": 1}, {"y": 1, "y": 1}]', "`y`"),
        ('{"a\\nb": 1, "a\\nb": 2}', "`'a\\nb'`"),
    ],
)
def test_a_duplicate_key_at_any_depth_is_refused(text: str, key: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        parse_json(text, source="f.json")
    assert str(caught.value) == f"f.json: duplicate key {key}; keep one of them"


def test_distinct_keys_still_load() -> None:
    assert parse_json('{"a": {"b": 1, "c": [{"b": 2}]}}', source="f.json") == {
        "a": {"b": 1, "c": [{"b": 2}]}
    }
