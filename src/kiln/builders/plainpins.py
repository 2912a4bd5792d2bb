"""The lock check of lockcheck.py for the common definition, without importing ``packaging``:
every pip entry a bare name or a plain ``name==version`` pin, and the venv builder's pylock.toml.

Why: importing ``packaging``'s requirement parser is about 20 ms, on the critical path of a warm
build from a stored lock (kiln.fastbuild). What is decided here is what lockcheck decides:
a pin is met when the lock installs that very version string (PEP 440 equality holds for equal
strings); anything else (other specifiers, extras, markers, URLs, a version spelled otherwise,
a lock that does not parse) is "cannot tell", and the caller asks lockcheck.
"""

from __future__ import annotations

import re
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_ARCHIVES = (".whl", ".tar.gz", ".zip")  # packages.looks_like_path: a name never ends so
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_BARE = re.compile(rf"{_NAME}")
_PIN = re.compile(rf"({_NAME})\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)")


def canonical(name: str) -> str:
    """PEP 503: as packaging.utils.canonicalize_name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(entries: list[str]) -> dict[str, list[str]] | None:
    """{name: [pinned versions]} of entries that are bare names or plain pins; None otherwise."""
    pins: dict[str, list[str]] = {}
    for entry in entries:
        text = entry.strip()
        if text.endswith(_ARCHIVES):
            return None  # a relative archive path, as kiln.environment.packages reads it
        if _BARE.fullmatch(text):
            continue
        match = _PIN.fullmatch(text)
        if match is None:
            return None
        pins.setdefault(canonical(match.group(1)), []).append(match.group(2))
    return pins


def all_plain(entries: list[str]) -> bool:
    """Every entry is a bare name or a plain ``name==version`` pin (none names a file)."""
    return _pins(entries) is not None


def plain_pins_met(packages: list[str], constraints: list[str], lock_text: str) -> bool | None:
    """True when every pin of ``packages`` is installed by the pylock ``lock_text`` at exactly
    that version, and every pinned constraint's name is locked at it or not at all; None when
    this cannot tell (lockcheck then decides, and may find a problem)."""
    required, optional = _pins(packages), _pins(constraints)
    if required is None or optional is None:
        return None
    try:
        locked: dict[str, list[str]] = {}
        for package in tomllib.loads(lock_text).get("packages", []):
            version = str(package.get("version", ""))
            locked.setdefault(canonical(str(package["name"])), []).append(version)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError):
        return None
    for pins, needed in ((required, True), (optional, False)):
        for name, versions in pins.items():
            have = locked.get(name, [])
            if (needed and not have) or any(v != pin for v in have for pin in versions):
                return None
    return True
