"""git, run for a build context given as a git URL: the commit a ref names now (``git
ls-remote``), and one commit fetched into a folder (shallow, by its sha, where the server
allows it; else everything, then that commit).

git never prompts (a missing credential is an error, not a hung build) and may use only the
transports a git context may name. Its credentials come from its own credential helpers, so
no secret passes through Kiln; what it prints is redacted anyway before it is shown.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from pathlib import Path

from kiln.errors import InvalidDefinition, KilnError
from kiln.secrets import redact

_TIMEOUT = 600  # seconds: a fetch of a large repository over a slow link
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
    "LC_ALL": "C",
}


class GitUnavailable(KilnError):
    """git is missing, or the remote cannot be reached or read."""

    exit_code = 5
    status = 502
    one_line = True


def _git(*args: str, what: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, **_ENV},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise GitUnavailable(
            f"{what}: git is not installed; install it (apt-get install git)"
        ) from None
    except subprocess.TimeoutExpired:
        raise GitUnavailable(f"{what}: git did not finish within {_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        said = redact(lines[-1].strip()) if lines else "no message"
        raise GitUnavailable(f"{what} failed (git exit {done.returncode}: {said})")
    return done.stdout


def resolve(url: str, ref: str | None, *, what: str) -> str | None:
    """The commit ``ref`` names on the remote now (None: the remote's HEAD), or None when the
    remote has no such branch, tag or ref. A branch wins over a tag of the same name."""
    if ref is None:
        wanted = ["HEAD"]
    elif ref.startswith("refs/"):
        wanted = [ref]
    else:
        wanted = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    peeled = [f"{name}^{{}}" for name in wanted if name.startswith("refs/tags/")]
    listed = _git("ls-remote", "--", url, *wanted, *peeled, what=f"{what}: git ls-remote {url}")
    found: dict[str, str] = {}
    for line in listed.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    for name in wanted:  # an annotated tag's commit is its peeled entry
        commit = found.get(f"{name}^{{}}") or found.get(name)
        if commit:
            return commit
    return None


def fetch(url: str, commit: str, ref: str | None, git_dir: Path, *, trees_only: bool) -> None:
    """``commit`` from ``url`` into a new bare repository at ``git_dir``: only its trees when
    ``trees_only`` (enough to list its files), else its files too."""
    what = f"git fetch {url} {commit[:12]}"
    _git("init", "-q", "--bare", str(git_dir), what=what)
    shallow = ["--depth=1", *(["--filter=blob:none"] if trees_only else [])]
    try:
        _git("fetch", "-q", "--no-tags", *shallow, "--", url, commit, what=what, cwd=git_dir)
    except GitUnavailable:
        # Servers that refuse a want by sha (uploadpack.allowReachableSHA1InWant off) still
        # serve refs: the ref that named the commit, or all branches and tags.
        refs = [ref] if ref and ref != commit else ["+refs/heads/*:refs/kiln/heads/*"]
        _git("fetch", "-q", "--tags", "--", url, *refs, what=what, cwd=git_dir)
    if not has_commit(git_dir, commit):
        raise GitUnavailable(f"{what}: the remote does not hold commit {commit}")


def has_commit(git_dir: Path, commit: str) -> bool:
    done = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
        cwd=git_dir,
        env={**os.environ, **_ENV, "GIT_NO_LAZY_FETCH": "1"},
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def entry_kind(git_dir: Path, commit: str, path: str) -> str | None:
    """ "tree" or "blob" for ``path`` in ``commit`` (trees suffice), None when absent."""
    listed = _git("ls-tree", "-z", commit, "--", path, what=f"git ls-tree {path}", cwd=git_dir)
    for line in listed.split("\0"):
        meta, _, name = line.partition("\t")
        if name == path:
            return meta.split()[1]
    return None


def checkout(git_dir: Path, commit: str, work_tree: Path) -> None:
    """``commit``'s files into ``work_tree`` (no ``.git`` inside: it is a build context)."""
    work_tree.mkdir(parents=True, exist_ok=True)
    _git(
        f"--git-dir={git_dir}",
        f"--work-tree={work_tree}",
        "checkout",
        "-q",
        "-f",
        commit,
        "--",
        ".",
        what=f"git checkout {commit[:12]}",
    )


def pin(
    url: str, ref: str | None, subfolder: str, dockerfile: str, *, pinned: str | None = None
) -> str:
    """The commit ``ref`` names now (``pinned`` when the ref already is a full commit), checked
    to hold ``subfolder`` and its ``dockerfile`` (only trees are fetched): what registering a
    git build context records."""
    field = "`docker.build_context`"
    commit = pinned or resolve(url, ref, what=field)
    if commit is None:
        named = f"no branch or tag {ref!r}" if ref else "no HEAD"
        raise InvalidDefinition(
            f"{field}: {url} has {named}; name an existing branch, tag or full commit after '#'"
        )
    where = f"{url} at commit {commit[:12]}"
    with tempfile.TemporaryDirectory(prefix="kiln-git-") as scratch:
        git_dir = Path(scratch) / "repo.git"
        fetch(url, commit, ref, git_dir, trees_only=True)
        if subfolder and entry_kind(git_dir, commit, subfolder) != "tree":
            raise InvalidDefinition(
                f"{field}: {where} has no folder {subfolder}; fix the part after ':'"
            )
        if entry_kind(git_dir, commit, posixpath.join(subfolder, dockerfile)) != "blob":
            inside = f" in {subfolder}" if subfolder else ""
            raise InvalidDefinition(
                f"`docker.dockerfile_path`: {dockerfile} not found{inside} in {where}; add it "
                "or set dockerfile_path"
            )
    return commit
