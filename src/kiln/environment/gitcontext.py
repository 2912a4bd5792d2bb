"""A build context given as a git URL, in Docker's syntax ``URL[#REF][:SUBFOLDER]`` (Azure ML
v2's ``build.path: https://github.com/org/repo.git#main:docker``). Pure: parsing and checks
only; ``kiln.gitremote`` runs git.

A git URL never carries a secret: a password or token in it would enter the definition, its
digest and every error that quotes it, so it is refused and git's credential helpers supply
it instead (as index passwords are only ever ``${VAR}`` references)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import NamedTuple
from urllib.parse import urlsplit

from kiln.environment.urls import is_loopback

# http and file are for this machine and tests: http is refused off loopback, as index URLs are.
SCHEMES = ("https", "ssh", "git", "http", "file")
COMMIT_PATTERN = r"^[0-9a-f]{40}([0-9a-f]{24})?$"  # sha1, or sha256 object format
_COMMIT = re.compile(COMMIT_PATTERN)
_SCP_LIKE = re.compile(r"^git@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>.+)$")
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")
_CREDENTIAL_FIX = (
    "remove it and let a git credential helper supply it (git config --global credential.helper "
    "store, or your platform's helper); Kiln never stores a git secret"
)


class GitContext(NamedTuple):
    """A parsed git build context."""

    url: str  # the repository, as git is given it (no fragment)
    ref: str | None  # a branch, tag, ``refs/...`` or full commit; None: the remote's HEAD
    subfolder: str  # the context inside the repository ("" for its top)

    @property
    def pinned_ref(self) -> str | None:
        """The ref when it already is a full commit (no network needed to resolve it)."""
        return self.ref if self.ref and _COMMIT.match(self.ref) else None


def is_git_url(context: str) -> bool:
    """Docker's rule, narrowed: a URL (``scheme://``) or ``git@host:path``; else a folder."""
    return "://" in context or context.startswith("git@")


def parse(context: str) -> GitContext:
    """``URL[#REF][:SUBFOLDER]`` checked; ValueError (one line, no secret) when it is not a
    git context Kiln can fetch."""
    url, _, fragment = context.partition("#")
    ref, _, subfolder = fragment.partition(":")
    _check_transport(url)
    if ref and (not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/"))):
        raise ValueError(
            f"the ref {ref!r} is not a branch, tag or commit name; write URL#BRANCH, URL#TAG "
            "or URL#COMMIT (40 hex digits), optionally followed by :SUBFOLDER"
        )
    folder = PurePosixPath(subfolder.strip("/") or ".")
    if subfolder.startswith("/") or ".." in folder.parts or "\\" in subfolder:
        raise ValueError(
            f"the subfolder {subfolder!r} must be a path inside the repository, e.g. "
            "URL#main:docker"
        )
    return GitContext(url, ref or None, "" if folder.as_posix() == "." else folder.as_posix())


def _check_transport(url: str) -> None:
    scp = _SCP_LIKE.match(url)
    if scp:
        return  # git@host:path: ssh with the login "git"; the host pattern refuses '-...'
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ValueError("the git URL is malformed; write https://HOST/PATH.git") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"{scheme}:// is not a git transport Kiln fetches; use https://, ssh://, git@HOST:PATH, "
            "git:// (or file:// and http:// on this machine)"
        )
    if parts.password is not None or (parts.username is not None and scheme != "ssh"):
        raise ValueError(f"the git URL carries a user name, password or token; {_CREDENTIAL_FIX}")
    if scheme != "file" and (not host or host.startswith("-")):
        raise ValueError("the git URL names no host; write SCHEME://HOST/PATH")
    if scheme in ("http", "git") and not is_loopback(host):
        raise ValueError(
            f"{scheme}:// is unencrypted, so the source could be changed on the way; use https:// "
            f"or ssh:// ({scheme}:// is accepted for localhost, 127.0.0.0/8 and [::1] only)"
        )
