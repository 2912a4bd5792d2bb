"""Which locks agree with a definition's exact pins (kiln.builders.lockcheck), for each lock
format a builder installs: pip pins with markers and constraints, conda ``=`` pins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiln.builders import conda, user_managed, venv
from kiln.builders.base import BuildContext, Lock
from kiln.builders.lockcheck import pin_mismatches, read_lock
from kiln.buildlog import NullLog
from kiln.environment.validation import validate_definition
from kilntesting.conda_channel import hello_channel


def _pylock(*packages: tuple[str, str]) -> Lock:
    body = "".join(f'\n[[packages]]\nname = "{n}"\nversion = "{v}"\n' for n, v in packages)
    return Lock(venv.LOCK_FORMAT, f'lock-version = "1.0"\ncreated-by = "uv"\n{body}')


def _pip(packages: list[str], constraints: list[str] | None = None) -> Any:
    pip = {"packages": packages, "constraints": constraints or []}
    return validate_definition({"name": "pins", "python": {"version": "3.11", "pip": pip}})


def test_an_exact_pip_pin_must_be_what_the_lock_installs() -> None:
    definition = _pip(["Six==1.16.0", "demo>=1"])
    assert pin_mismatches(definition, read_lock(_pylock(("six", "1.16.0"), ("demo", "3")))) == []
    assert pin_mismatches(definition, read_lock(_pylock(("six", "1.17.0"), ("demo", "3")))) == [
        "six==1.16.0 (the lock has 1.17.0)"
    ]
    assert pin_mismatches(definition, read_lock(_pylock(("demo", "3")))) == [
        "six==1.16.0 (the lock does not install it)"
    ]
    # PEP 440 equality: ==1.16 is 1.16.0.
    assert pin_mismatches(_pip(["six==1.16"]), read_lock(_pylock(("six", "1.16.0")))) == []


def test_constraints_and_pins_behind_markers() -> None:
    constrained = _pip(["demo"], ["six==1.16.0"])
    assert pin_mismatches(constrained, read_lock(_pylock(("demo", "1")))) == []  # not needed
    assert pin_mismatches(constrained, read_lock(_pylock(("demo", "1"), ("six", "1.17.0")))) == [
        "six==1.16.0 (the lock has 1.17.0)"
    ]
    marked = _pip(["six==1.16.0; python_version < '3.12'", "six==1.17.0; python_version >= '3.12'"])
    for version in ("1.16.0", "1.17.0"):
        assert pin_mismatches(marked, read_lock(_pylock(("six", version)))) == []
    assert pin_mismatches(marked, read_lock(_pylock())) == []  # may not apply here
    assert pin_mismatches(marked, read_lock(_pylock(("six", "1.15.0")))) == [
        "six==1.16.0 or ==1.17.0 (the lock has 1.15.0)"
    ]


@pytest.mark.parametrize(
    ("fmt", "text", "reason"),
    [
        (venv.LOCK_FORMAT, '[[packages]\nname = "six"\n', "not valid TOML"),
        (conda.LOCK_FORMAT, '{"conda": [', "not valid JSON"),
        (conda.LOCK_FORMAT, '{"pip": null}', "not a lock"),
        (user_managed.LOCK_FORMAT, "[{}]", "not a lock"),
        ("zip", "", "not one this version of Kiln installs"),
    ],
)
def test_a_lock_that_does_not_parse_is_a_value_error_saying_why(
    fmt: str, text: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        read_lock(Lock(fmt, text))


def test_an_interpreters_recorded_packages_are_not_held_to_pins() -> None:
    recorded = Lock(user_managed.LOCK_FORMAT, json.dumps([{"name": "six", "version": "1.17.0"}]))
    assert pin_mismatches(_pip(["six==1.16.0"]), read_lock(recorded)) == []


def test_a_conda_pin_is_read_as_conda_reads_it(tmp_path: Path) -> None:
    channel = hello_channel(tmp_path / "channel")
    conda_part = {"channels": [str(channel.root)], "packages": ["python=3.11", "hello-lib=2"]}
    definition = validate_definition(
        {"name": "hello", "python": {"version": "3.11", "conda": conda_part}}
    )
    ctx = BuildContext(NullLog(), tmp_path / "cache" / "uv")
    lock = conda.resolve(definition, conda.target(definition, ctx), ctx)
    assert pin_mismatches(definition, read_lock(lock)) == []  # =2 is 2.* : 2.0 agrees

    data = json.loads(lock.text)
    for record in data["conda"]:
        if record["name"] == "hello-lib":
            record["version"] = "3.0"
    edited = Lock(lock.format, json.dumps(data))
    assert pin_mismatches(definition, read_lock(edited)) == ["hello-lib=2 (the lock has 3.0)"]
