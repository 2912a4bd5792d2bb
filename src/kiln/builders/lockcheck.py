"""Read a stored lock the way its builder installs it, and check it against the definition.

A lock row is shared by every machine of the workspace, so anyone with write access to the
registry can change it. Before a build installs one, the core checks that its text parses and
that every exact pin of the definition (``==`` in ``python.pip.packages`` and the constraints,
a pinned conda match spec) is what the lock installs. Lock formats are builders' facts, so this
reading lives here, beside them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from kiln.builders import venv
from kiln.builders.base import Lock
from kiln.environment.packages import parse_conda_entry, parse_pip_entry

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class LockedPackages:
    """What a lock installs: pip names (PEP 503) and conda records, by name."""

    pip: dict[str, list[str]] = field(default_factory=dict)  # name -> versions ("" if none)
    conda: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pins_apply: bool = True  # False when the lock records an interpreter rather than installs


def read_lock(lock: Lock) -> LockedPackages:
    """The packages ``lock`` installs; ValueError saying why when its text does not parse."""
    try:
        return _read(lock)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if isinstance(exc, json.JSONDecodeError) else "TOML"
        raise ValueError(f"its {lock.format} text is not valid {kind} ({exc})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"its {lock.format} text is not a lock ({type(exc).__name__}: {exc})"
        ) from None


def _read(lock: Lock) -> LockedPackages:
    if lock.format == venv.LOCK_FORMAT:
        return LockedPackages(pip=_pylock(lock.text))
    # The conda builder's module is imported only for its locks: a venv build from a stored
    # lock checks it without importing conda's solver and channels.
    from kiln.builders import conda, user_managed

    if lock.format == conda.LOCK_FORMAT:
        data = json.loads(lock.text)
        records: list[dict[str, Any]] = data["conda"]
        by_name: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_name.setdefault(str(record["name"]).lower(), []).append(record)
        pip_text = data["pip"]
        return LockedPackages(pip=_pylock(pip_text) if pip_text else {}, conda=by_name)
    if lock.format == user_managed.LOCK_FORMAT:
        # What an existing interpreter has: the build installs nothing, so no pin is "installed".
        found: dict[str, list[str]] = {
            canonicalize_name(p["name"]): [str(p["version"])] for p in json.loads(lock.text)
        }
        return LockedPackages(pip=found, pins_apply=False)
    raise ValueError(f"its format {lock.format!r} is not one this version of Kiln installs")


def _pylock(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in tomllib.loads(text).get("packages", []):
        found.setdefault(canonicalize_name(package["name"]), []).append(
            str(package.get("version", ""))
        )
    return found


def pin_mismatches(definition: EnvironmentDefinition, locked: LockedPackages) -> list[str]:
    """``name==pinned (the lock has ...)`` for each exact pin the lock does not install."""
    python = definition.python
    return pin_problems(python.pip.packages, python.pip.constraints, python.conda.packages, locked)


def pin_problems(
    packages: list[str], constraints: list[str], conda_packages: list[str], locked: LockedPackages
) -> list[str]:
    """``pin_mismatches`` given the definition's pip packages, pip constraints and conda
    packages (read without the model by kiln.fastbuild)."""
    if not locked.pins_apply:
        return []
    pip = _pip_mismatches(packages, constraints, locked.pip)
    return pip + _conda_mismatches(conda_packages, locked.conda)


def _pip_mismatches(
    packages: list[str], constraints: list[str], pip: dict[str, list[str]]
) -> list[str]:
    problems = []
    for name, pins in _pip_pins(packages, constraints).items():
        versions = pip.get(name, [])
        has = f"the lock has {', '.join(versions)}" if versions else "the lock does not install it"
        plain = [p for p in pins if not p.marked]
        for pin in plain:
            if (pin.required and not versions) or not all(
                _satisfies(v, pin.spec) for v in versions
            ):
                problems.append(f"{name}{pin.spec} ({has})")
        # Pins behind markers (``six==1.16; python_version<'3.12'``) may not apply here, and
        # another pin of the name may: a locked version must satisfy one of them.
        marked = [p.spec for p in pins if p.marked]
        if (
            marked
            and not plain
            and not all(any(_satisfies(v, s) for s in marked) for v in versions)
        ):
            problems.append(f"{name}{' or '.join(marked)} ({has})")
    return problems


@dataclass(frozen=True)
class _Pin:
    spec: str  # "==1.16.0"
    marked: bool  # behind an environment marker
    required: bool  # a package (not a constraint): the lock must install it


def _pip_pins(packages: list[str], constraints: list[str]) -> dict[str, list[_Pin]]:
    """The exact (``==``/``===``) pins of the packages and constraints, by PEP 503 name."""
    pins: dict[str, list[_Pin]] = {}
    entries = [(e, True) for e in packages] + [(e, False) for e in constraints]
    for text, required in entries:
        entry = parse_pip_entry(text)
        req = entry.requirement
        if entry.kind != "requirement" or req is None or req.url or not entry.is_pinned:
            continue
        assert entry.name is not None
        pin = _Pin(str(req.specifier), req.marker is not None, required)
        pins.setdefault(entry.name, []).append(pin)
    return pins


def _satisfies(version: str, specifier: str) -> bool:
    try:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    except InvalidSpecifier:  # pragma: no cover - the definition's specifiers were validated
        return False


def _conda_mismatches(
    conda_packages: list[str], records: dict[str, list[dict[str, Any]]]
) -> list[str]:
    if not conda_packages:
        return []
    from kiln.builders import conda

    problems = []
    for text in conda_packages:
        entry = parse_conda_entry(text)
        if entry.name in conda.FROM_MACHINE or not entry.is_pinned:
            continue
        spec = f"{entry.name}{' ' if entry.constraint[:1].isalnum() else ''}{entry.constraint}"
        found = records.get(entry.name, [])
        if not found:
            problems.append(f"{spec} (the lock does not install it)")
        elif not all(_conda_matches(spec, record) for record in found):
            versions = ", ".join(f"{r.get('version')}" for r in found)
            problems.append(f"{spec} (the lock has {versions})")
    return problems


def _conda_matches(spec: str, record: dict[str, Any]) -> bool:
    """conda's own reading of the spec (``=1.26`` is 1.26.*, ``==1.26.4`` exact)."""
    from rattler import MatchSpec

    from kiln.builders import conda

    try:
        return bool(MatchSpec(spec).matches(conda.locked_record(record)))
    except Exception:  # a record rattler cannot read does not match anything
        return False
