"""Advice on a definition: what makes it unreproducible, ambiguous or unsafe.

An ``error`` is something that will fail or leak (two pins of one package that cannot both
hold, a secret stored in plain text); a ``warning`` is something that makes a build drift or
surprise (an unpinned package or base image, a package listed twice).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_conda_entry, parse_pip_entry
from kiln.secrets import plain_secret_variable

_IMPLIED_CONDA = {"python", "pip"}


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Pin(NamedTuple):
    field: str
    name: str  # PEP 503, so pip's and conda's names meet
    version: str
    fuzzy: bool  # conda's NAME=1.26 means 1.26.*


def _conda_pin(constraint: str) -> tuple[str, bool] | None:
    """(version, fuzzy) of a conda constraint that names one version, else None."""
    text = constraint.strip()
    if not text or text[0] in "[<>!~" or any(c in text for c in "*,|"):
        return None
    if text.startswith("=="):
        return text[2:].split("=")[0].split()[0], False
    if text.startswith("="):
        version, _, build = text[1:].partition("=")
        return version.split()[0], not build  # with a build string it is one exact build
    return text.split()[0], False  # "NAME 1.26.4 [BUILD]"


def _pins(definition: EnvironmentDefinition) -> list[Pin]:
    """Every pin to one version, pip and conda alike."""
    pins = []
    for index, entry in enumerate(definition.python.pip.packages):
        parsed = parse_pip_entry(entry)
        if parsed.kind == "requirement" and parsed.is_pinned and parsed.name:
            version = parsed.specifier.lstrip("=")
            pins.append(Pin(f"python.pip.packages[{index}]", parsed.name, version, False))
    for index, entry in enumerate(definition.python.conda.packages):
        conda = parse_conda_entry(entry)
        pin = _conda_pin(conda.constraint)
        if pin is not None and conda.name not in _IMPLIED_CONDA:
            field = f"python.conda.packages[{index}]"
            pins.append(Pin(field, canonicalize_name(conda.name), *pin))
    return pins


def _release(version: str) -> tuple[Any, ...]:
    try:
        return Version(version).release
    except InvalidVersion:
        return tuple(version.split("."))


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)  # 1.26 and 1.26.0 are one version
    except InvalidVersion:
        return a == b


def _agree(a: Pin, b: Pin) -> bool:
    """Whether one version satisfies both pins; conda's fuzzy 1.26 takes any 1.26.x."""
    if _same_version(a.version, b.version):
        return True
    ra, rb = _release(a.version), _release(b.version)
    return (a.fuzzy and rb[: len(ra)] == ra) or (b.fuzzy and ra[: len(rb)] == rb)


def _unpinned(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    for index, entry in enumerate(definition.python.pip.packages):
        parsed = parse_pip_entry(entry)
        direct = parsed.requirement is not None and parsed.requirement.url
        if not parsed.is_pinned and not direct:  # NAME @ URL names one artifact
            found.append(
                Finding(
                    "warning",
                    f"python.pip.packages[{index}]",
                    f"{entry!r} is not pinned; write {parsed.name}==VERSION",
                )
            )
    for index, entry in enumerate(definition.python.conda.packages):
        conda = parse_conda_entry(entry)
        if conda.name not in _IMPLIED_CONDA and not conda.is_pinned:
            found.append(
                Finding(
                    "warning",
                    f"python.conda.packages[{index}]",
                    f"{entry!r} is not pinned; write {conda.name}=VERSION",
                )
            )
    return found


def _duplicates(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    python = definition.python
    for source, entries in (("pip", python.pip.packages), ("conda", python.conda.packages)):
        seen: dict[str, str] = {}
        for index, entry in enumerate(entries):
            name = parse_pip_entry(entry).name if source == "pip" else parse_conda_entry(entry).name
            field = f"python.{source}.packages[{index}]"
            if name and name in seen:
                message = f"{name} is listed twice (also {seen[name]})"
                found.append(Finding("warning", field, message))
            if name:
                seen.setdefault(name, field)
    return found


def _conflicts(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    first: dict[str, Pin] = {}
    for pin in _pins(definition):
        other = first.setdefault(pin.name, pin)
        if other is not pin and not _agree(pin, other):
            message = (
                f"{pin.name} is pinned to {pin.version} here and to {other.version} "
                f"in {other.field}; keep one pin"
            )
            found.append(Finding("error", pin.field, message))
    return found


def _image(definition: EnvironmentDefinition) -> list[Finding]:
    image = definition.docker.base_image
    if not image or "@sha256:" in image:
        return []
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        message = f"{image!r} has no tag; pin a tag or a digest"
        return [Finding("warning", "docker.base_image", message)]
    if last.endswith(":latest"):
        message = f"{image!r} uses 'latest', which moves; pin a tag or a digest"
        return [Finding("warning", "docker.base_image", message)]
    return []


def plaintext_secrets(definition: EnvironmentDefinition) -> list[Finding]:
    """Environment variables whose names say secret and whose values are written out (only in
    a definition registered before such values were refused)."""
    found = []
    for key, value in definition.environment_variables.items():
        message = plain_secret_variable(key, value)
        if message is not None:
            found.append(Finding("error", f"environment_variables.{key}", message))
    return found


def _other(definition: EnvironmentDefinition) -> list[Finding]:
    found = plaintext_secrets(definition)
    python = definition.python
    if python.user_managed and (python.pip.packages or python.conda.packages):
        message = "packages are listed but user_managed is true, so Kiln installs none of them"
        found.append(Finding("warning", "python.user_managed", message))
    return found


def lint(definition: EnvironmentDefinition) -> list[Finding]:
    checks = (_unpinned, _duplicates, _conflicts, _image, _other)
    return [finding for check in checks for finding in check(definition)]
