"""Build contexts given as git URLs, in Docker's syntax URL[#REF][:SUBFOLDER]: parsed and
checked by the model (no network here), and what of them enters which digest."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.gitcontext import GitContext, is_git_url, parse
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        (
            "https://github.com/org/repo.git#main:docker",
            GitContext("https://github.com/org/repo.git", "main", "docker"),
        ),
        ("https://h.example/r.git", GitContext("https://h.example/r.git", None, "")),
        ("https://h.example/r.git#:sub/dir/", GitContext("https://h.example/r.git", None, "sub/dir")),
        ("git@github.com:org/repo.git#v1.2", GitContext("git@github.com:org/repo.git", "v1.2", "")),
        ("ssh://git@h.example/r.git#refs/pull/7/head", GitContext("ssh://git@h.example/r.git", "refs/pull/7/head", "")),
        ("git://127.0.0.1:9418/r", GitContext("git://127.0.0.1:9418/r", None, "")),
        ("file:///srv/r#" + COMMIT, GitContext("file:///srv/r", COMMIT, "")),
    ],
)  # fmt: skip
def test_docker_git_syntax_is_parsed(written: str, parsed: GitContext) -> None:
    assert is_git_url(written)
    assert parse(written) == parsed


def test_folders_are_not_git_urls() -> None:
    assert not any(is_git_url(f) for f in ("ctx", "./docker", "../shared/ctx", "a#b:c"))
    assert parse("https://h.example/r.git#" + COMMIT).pinned_ref == COMMIT
    assert parse("https://h.example/r.git#main").pinned_ref is None


@pytest.mark.parametrize(
    ("context", "said"),
    [
        ("https://bob:hunter2-secret@h.example/r.git", "carries a user name, password or token"),
        ("https://hunter2-secret@h.example/r.git", "let a git credential helper supply it"),
        ("ssh://git:hunter2-secret@h.example/r.git", "carries a user name, password or token"),
        ("ext::sh -c touch% /tmp/x", None),  # not a URL: a folder name, which must exist
        ("s3://bucket/ctx", "s3:// is not a git transport"),
        ("http://h.example/r.git", "http:// is unencrypted"),
        ("git://h.example/r.git", "git:// is unencrypted"),
        ("https://h.example/r.git#--upload-pack=evil", "is not a branch, tag or commit name"),
        ("https://h.example/r.git#a..b", "is not a branch, tag or commit name"),
        ("https://h.example/r.git#main:../up", "must be a path inside the repository"),
        ("https:///r.git", "names no host"),
    ],
)
def test_bad_git_contexts_are_one_line_naming_the_field_and_never_the_secret(
    context: str, said: str | None
) -> None:
    if said is None:
        assert not is_git_url(context)
        return
    with pytest.raises(InvalidDefinition) as caught:
        validate_definition({"name": "x", "docker": {"build_context": context}}, source="t.yml")
    message = caught.value.message
    assert message.startswith("`docker.build_context` in t.yml: ") and said in message
    assert "hunter2" not in message and "\n" not in message


def _definition(context: str, commit: str | None = COMMIT, **docker: Any) -> Any:
    section = {"build_context": context, "build_context_commit": commit, **docker}
    return validate_definition({"name": "x", "docker": section}, source="t")


def test_the_commit_decides_the_build_and_the_url_and_ref_the_definition() -> None:
    main = _definition("https://h.example/r.git#main:docker")
    mirror = _definition("https://mirror.example/r.git#v1:docker")
    moved = _definition("https://h.example/r.git#main:docker", "f" * 40)
    other_folder = _definition("https://h.example/r.git#main:other")

    assert build_hash(main) == build_hash(mirror)  # the same commit's tree: one build
    assert definition_digest(main) != definition_digest(mirror)
    assert build_hash(moved) != build_hash(main)
    assert build_hash(other_folder) != build_hash(main)


def test_a_commit_needs_a_git_context_and_an_unresolved_one_has_no_build_hash() -> None:
    with pytest.raises(InvalidDefinition, match="build_context_commit` needs a git URL"):
        _definition("ctx")
    with pytest.raises(InvalidDefinition, match="build_context_commit"):
        _definition("https://h.example/r.git", "main")
    with pytest.raises(InvalidDefinition, match="must be a path inside the git build context"):
        _definition("https://h.example/r.git", dockerfile_path="../../etc/passwd")
    with pytest.raises(ValueError, match="has not been resolved to a commit"):
        build_hash(_definition("https://h.example/r.git", None))
