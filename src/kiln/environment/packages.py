"""Parse and normalize single package entries (pip requirement lines, conda match specs).

A pip entry is a PEP 508 requirement, a direct URL, a local file path, or ``wheel:FILENAME`` (a
wheel stored in the workspace with ``kiln wheel add``), optionally followed by ``--hash=ALGO:HEX``
options. The normalized form is what enters the digests: PEP 503 names,
sorted extras, specifiers and hashes (sets have no order), but never a file path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

# The URL rules live with the other secret rules (compute targets use them too); re-exported.
from kiln.secrets import strip_url_credentials as strip_url_credentials
from kiln.secrets import url_has_literal_credentials as url_has_literal_credentials

WHEEL_PREFIX = "wheel:"
_HASH_OPTION = re.compile(r"\s+--hash[=\s]([A-Za-z0-9]+):([0-9A-Fa-f]+)")
_URL_SCHEME = re.compile(r"^(https?|file|git\+[a-z]+|hg\+[a-z]+|svn\+[a-z]+|bzr\+[a-z]+)://", re.I)
_CONDA_SPEC = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_.\-/:]+)::)?"
    r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)"
    r"(?P<rest>(?:\[[^\]]*\])?(?:\s*[=<>!~]{0,3}\s*[A-Za-z0-9_.*+!<>=,|\-]+)?(?:\s+[A-Za-z0-9_.*+\-]+)?)$"
)


@dataclass(frozen=True)
class PipEntry:
    """One parsed pip entry. ``kind`` is ``requirement``, ``url``, ``path`` or ``wheel``."""

    kind: str
    text: str
    name: str | None
    specifier: str
    hashes: tuple[str, ...]
    requirement: Requirement | None = None

    @property
    def is_pinned(self) -> bool:
        if self.kind != "requirement" or (self.requirement is not None and self.requirement.url):
            return True  # a URL or a file names exactly one artifact
        spec = self.specifier
        return spec.startswith(("==", "===")) and "," not in spec and "*" not in spec


def looks_like_path(text: str) -> bool:
    if text.startswith(("./", "../", "/", "~")):
        return True
    archive = text.endswith((".whl", ".tar.gz", ".zip"))
    return archive and not _URL_SCHEME.match(text) and " @ " not in text


def parse_pip_entry(text: str) -> PipEntry:
    """Parse one pip entry or raise ``ValueError`` with a message that says what is wrong."""
    line = " ".join(text.split())
    if not line:
        raise ValueError("is empty; remove it or write a requirement such as 'numpy==1.26.4'")
    if line.startswith("#"):
        raise ValueError(f"{line!r} is a comment, not a package")
    hashes = tuple(
        sorted(f"{algo.lower()}:{digest.lower()}" for algo, digest in _HASH_OPTION.findall(line))
    )
    body = _HASH_OPTION.sub("", line).strip()
    if body.startswith("-"):
        raise ValueError(
            f"{body!r} is a pip option, not a package; put index options under pip options"
        )
    if body.startswith(WHEEL_PREFIX):
        return PipEntry("wheel", line, _stored_wheel_name(body), "", hashes)
    if _URL_SCHEME.match(body):
        if body.lower().startswith("file:"):
            raise ValueError(_file_url_message(body))
        if url_has_literal_credentials(body):
            raise ValueError(_credentials_message(body))
        return PipEntry("url", line, None, "", hashes)
    if looks_like_path(body):
        return PipEntry("path", line, None, "", hashes)
    try:
        req = Requirement(body)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(
            f"{body!r} is not a valid requirement ({reason}); write it as NAME[extras]SPEC, "
            "e.g. 'scikit-learn>=1.4'"
        ) from None
    if any(not spec.version for spec in req.specifier):
        raise ValueError(f"{body!r} has an operator without a version; write e.g. 'numpy==1.26.4'")
    if req.url and url_has_literal_credentials(req.url):
        raise ValueError(_credentials_message(req.url))
    if req.url and req.url.lower().startswith("file:"):
        raise ValueError(_file_url_message(body))
    return PipEntry(
        "requirement", line, canonicalize_name(req.name), str(req.specifier), hashes, req
    )


def _stored_wheel_name(body: str) -> str:
    filename = body[len(WHEEL_PREFIX) :].strip()
    try:
        name = parse_wheel_filename(filename)[0]
    except InvalidWheelFilename as exc:
        raise ValueError(
            f"{body!r} does not name a wheel file ({exc}); write wheel:FILENAME as "
            "`kiln wheel list` shows it, e.g. wheel:demo-1.0-py3-none-any.whl"
        ) from None
    if "/" in filename or "\\" in filename:
        raise ValueError(f"{body!r} names a path; write the stored wheel's file name only")
    return str(name)


def local_file_name(entry: str) -> str:
    """The file name of a local entry (``./wheels/x.whl`` or ``wheel:x.whl`` -> ``x.whl``)."""
    body = _HASH_OPTION.sub("", " ".join(entry.split())).strip()
    return body.removeprefix(WHEEL_PREFIX).replace("\\", "/").rsplit("/", 1)[-1]


def normalize_pip_entry(entry: PipEntry, file_digest: str | None = None) -> str:
    """The canonical text of an entry. Local files and stored wheels are identified by content
    only: the same wheel by path or by ``wheel:`` name hashes alike."""
    hashes = "".join(f" --hash={h}" for h in entry.hashes)
    if entry.kind == "wheel" and file_digest is None:
        raise ValueError(
            f"stored wheel {entry.text!r} has not been looked up in a workspace; register the "
            "definition to hash it (`kiln wheel add` stores the wheel first)"
        )
    if entry.kind in ("path", "wheel"):
        if file_digest is None:
            raise ValueError(f"local file {entry.text!r} has not been read; its content is needed")
        return f"file:sha256:{file_digest}{hashes}"
    if entry.kind == "url":
        return strip_url_credentials(entry.text.split(" --hash")[0].strip()) + hashes
    req = entry.requirement
    assert req is not None and entry.name is not None
    text = entry.name
    if req.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        text += " @ " + strip_url_credentials(req.url)
    else:
        text += str(req.specifier)
    if req.marker is not None:
        text += f"; {req.marker}"
    return text + hashes


def _file_url_message(text: str) -> str:
    # A file: URL would be hashed by its path; a relative path is hashed by its content.
    return f"{text!r} is a file: URL; write a path relative to the definition, e.g. ./wheels/x.whl"


def _credentials_message(url: str) -> str:
    return (
        f"URL {strip_url_credentials(url)!r} carries a plain-text password; write it as "
        "https://USER:${ENV_VAR}@HOST/... so the secret is read from the environment"
    )


@dataclass(frozen=True)
class CondaEntry:
    text: str
    channel: str | None
    name: str
    constraint: str

    @property
    def is_pinned(self) -> bool:
        bare = self.constraint.lstrip("=").strip()
        return (
            bool(bare) and not self.constraint.startswith((">", "<", "!", "~")) and "*" not in bare
        )


def parse_conda_entry(text: str) -> CondaEntry:
    """Parse a conda match spec such as ``conda-forge::numpy=1.26`` or ``python 3.11 h1234_0``."""
    line = " ".join(text.split())
    if not line:
        raise ValueError("is empty; remove it or write a conda spec such as 'numpy=1.26'")
    if line.startswith("#"):
        raise ValueError(f"{line!r} is a comment, not a package")
    match = _CONDA_SPEC.match(line)
    if match is None:
        raise ValueError(
            f"{line!r} is not a conda match spec; write NAME, NAME=VERSION or CHANNEL::NAME=VERSION"
        )
    channel = match.group("channel")
    rest = match.group("rest").strip()
    return CondaEntry(line, channel, match.group("name").lower(), rest)


def normalize_conda_entry(entry: CondaEntry) -> str:
    prefix = f"{entry.channel}::" if entry.channel else ""
    rest = entry.constraint
    if rest and rest[0] not in "=<>!~[":
        rest = " " + rest
    return f"{prefix}{entry.name}{rest}"


def conda_python_version(spec: str) -> str | None:
    """``python=3.11`` / ``python==3.11.7`` / ``python 3.11`` -> the version, else None."""
    match = re.fullmatch(r"python\s*(?:==?|\s)\s*([0-9][0-9.]*\*?)", " ".join(spec.split()), re.I)
    return match.group(1).rstrip("*").rstrip(".") if match else None
