"""The packaging-free pin check of a warm build (kiln.builders.plainpins) never says "met"
where lockcheck finds a problem, and says it for the common plain pins."""

from __future__ import annotations

import pytest

from kiln.builders.base import Lock
from kiln.builders.lockcheck import pin_problems, read_lock
from kiln.builders.plainpins import all_plain, plain_pins_met
from kiln.builders.venv import LOCAL_KINDS
from kiln.environment.packages import parse_pip_entry


def _pylock(*packages: tuple[str, str]) -> str:
    entries = "".join(f'[[packages]]\nname = "{n}"\nversion = "{v}"\n\n' for n, v in packages)
    return f'lock-version = "1.0"\ncreated-by = "kiln"\n\n{entries}'


LOCK = _pylock(("numpy", "2.4.6"), ("scikit-learn", "1.9.1"), ("six", "1.17.0"))


def _lockcheck_finds_nothing(packages: list[str], constraints: list[str], text: str) -> bool:
    try:
        locked = read_lock(Lock("pylock.toml", text, [], ""))
    except ValueError:
        return False
    return not pin_problems(packages, constraints, [], locked)


@pytest.mark.parametrize(
    ("packages", "constraints", "met"),
    [
        (["numpy==2.4.6", "Scikit_Learn == 1.9.1", "six"], [], True),
        (["numpy"], ["six==1.17.0", "not-locked==1.0"], True),
        (["numpy==2.4.5"], [], None),  # another version: lockcheck says so
        (["missing==1.0"], [], None),
        (["numpy"], ["six==1.16.0"], None),
        (["numpy==2.4.6.0"], [], None),  # equal under PEP 440 only: lockcheck decides
        (["numpy[extra]==2.4.6"], [], None),
        (["numpy>=2"], [], None),
        (["numpy==2.4.6; python_version<'3.12'"], [], None),
        (["./wheels/numpy-2.4.6-py3-none-any.whl"], [], None),
        (["numpy-2.4.6-py3-none-any.whl"], [], None),  # a relative path, though name-like
        (["six"], ["numpy-2.4.6.tar.gz"], None),
        (["wheel:numpy-2.4.6-py3-none-any.whl"], [], None),
        (["numpy==2.*"], [], None),
        (["numpy===2.4.6"], [], None),
    ],
)
def test_plain_pins_are_met_only_where_lockcheck_agrees(
    packages: list[str], constraints: list[str], met: bool | None
) -> None:
    assert plain_pins_met(packages, constraints, LOCK) is met
    if met:
        assert _lockcheck_finds_nothing(packages, constraints, LOCK)


@pytest.mark.parametrize(
    "entries", [["numpy-2.4.6-py3-none-any.whl"], ["demo.zip"], ["six", "pkg-1.0.tar.gz"]]
)
def test_an_archive_named_like_a_package_is_a_file(entries: list[str]) -> None:
    assert any(parse_pip_entry(entry).kind in LOCAL_KINDS for entry in entries)
    assert not all_plain(entries)


@pytest.mark.parametrize("text", ["not toml [", '[[packages]]\nversion = "1"\n', "packages = 3"])
def test_a_lock_that_does_not_read_is_left_to_lockcheck(text: str) -> None:
    assert plain_pins_met(["numpy==2.4.6"], [], text) is None
