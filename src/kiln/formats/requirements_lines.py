"""Reading a pip requirements file line by line, as pip does (see formats/requirements.py for
the rules Kiln adds): includes flattened, options checked, local paths rebased, hashes kept."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kiln.environment.files import read_text_limited, resolve_inside
from kiln.environment.packages import (
    parse_pip_entry,
    strip_url_credentials,
    url_has_literal_credentials,
)
from kiln.errors import InvalidDefinition

_FULL_COMMENT = re.compile(r"^\s*#")
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's rule: '#' starts a comment only after whitespace
_INCLUDES = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_INDEX_OPTIONS = {"-i": "index_url", "--index-url": "index_url", "-f": "find_links"}
_INDEX_OPTIONS |= {"--find-links": "find_links", "--extra-index-url": "extra_index_urls"}
_HASH = re.compile(r"sha256:[0-9A-Fa-f]{64}|sha384:[0-9A-Fa-f]{96}|sha512:[0-9A-Fa-f]{128}")
_SUPPORTED = (
    "Kiln supports -r/--requirement, -c/--constraint, -i/--index-url, --extra-index-url, "
    "-f/--find-links and --pre lines, and --hash=ALGO:HEX after a requirement"
)
_EDITABLE = "; build a wheel and list its path instead of an editable install"
_HINTS = {
    "-e": _EDITABLE,
    "--editable": _EDITABLE,
    "--no-index": "; list local wheels by path, or set --index-url to your own index",
    "--trusted-host": "; serve the index over https",
}


@dataclass(frozen=True)
class ParsedRequirements:
    """Everything pip would read from a requirements file and its includes, flattened."""

    packages: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False
    warnings: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()  # the requirements files read, top file first


@dataclass
class _State:
    top: Path  # the top file's folder, resolved: includes and wheels must stay inside it
    shown_top: Path  # the same folder as the caller wrote it, for messages
    packages: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    pre: bool = False
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    stack: list[tuple[Path, str]] = field(default_factory=list)  # files being read, for cycles


@dataclass(frozen=True)
class _Line:
    folder: Path  # relative paths on this line are taken from here, as pip does
    where: str  # "FILE:LINE" for messages
    text: str
    constraint: bool


def parse_lines(path: Path) -> ParsedRequirements:
    """Read ``path`` and the files it includes. Nothing is written; errors name file and line."""
    state = _State(top=path.parent.resolve(), shown_top=path.parent)
    text = read_text_limited(path, field=path.name)
    _read_file(state, state.top / path.name, text, constraint=False)
    hashed = sum(" --hash=" in entry for entry in state.packages)
    if 0 < hashed < len(state.packages):
        state.warnings.append(
            f"{path}: {hashed} of {len(state.packages)} packages have --hash; pip then requires "
            "a hash on every package and the build will fail"
        )
    return ParsedRequirements(
        tuple(state.packages), tuple(state.constraints), state.index_url,
        tuple(state.extra_index_urls), tuple(state.find_links), state.pre,
        tuple(state.warnings), tuple(state.files),
    )  # fmt: skip


def _read_file(state: _State, file: Path, text: str, *, constraint: bool) -> None:
    relative = file.relative_to(state.top).as_posix()
    shown = str(state.shown_top / relative)
    state.stack.append((file.resolve(), relative))
    state.files.append(file)
    for number, text_line in _logical_lines(text):
        _parse_line(state, _Line(file.parent, f"{shown}:{number}", text_line, constraint))
    state.stack.pop()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) per non-blank line, continuations joined, comments cut.

    As in pip, a full-line comment ends a continuation instead of swallowing the next line.
    """
    start, parts = 0, list[str]()
    for number, raw in enumerate([*text.splitlines(), ""], start=1):  # "" ends a last "\\"
        if raw.endswith("\\") and not _FULL_COMMENT.match(raw):
            start, parts = start or number, [*parts, raw[:-1]]
            continue
        parts.append(" " + raw if _FULL_COMMENT.match(raw) else raw)  # ' #' is then cut below
        line = _COMMENT.sub("", "".join(parts)).strip()
        if line:
            yield start or number, line
        start, parts = 0, []


def _parse_line(state: _State, line: _Line) -> None:
    if not line.text.startswith("-"):
        _add_requirement(state, line)
        return
    tokens, index = _split(line, line.text), 0
    while index < len(tokens):
        flag, value, index = _next_option(line, tokens, index)
        if flag in _INCLUDES:
            _include(state, line, flag, value)
        elif flag == "--pre":
            state.pre = True
        else:
            _set_index_option(state, line, flag, value)


def _split(line: _Line, text: str) -> list[str]:
    try:
        return shlex.split(text)  # pip splits options like a shell (quotes, no expansion here)
    except ValueError as exc:
        raise InvalidDefinition(f"{line.where}: {exc}; check the quotes on this line") from None


def _next_option(line: _Line, tokens: list[str], index: int) -> tuple[str, str, int]:
    """(flag, value, next index) for the option at ``tokens[index]``."""
    token = tokens[index]
    if not token.startswith("-"):
        raise InvalidDefinition(
            f"{line.where}: unexpected {token!r} after an option; put each requirement and "
            "each option on its own line"
        )
    flag, equals, value = token.partition("=") if token.startswith("--") else (token, "", "")
    if len(flag) > 2 and not flag.startswith("--") and flag[:2] in (*_INCLUDES, *_INDEX_OPTIONS):
        flag, equals, value = flag[:2], "=", flag[2:].removeprefix("=")  # pip reads '-rfile'
    if flag == "--pre":
        if equals:
            raise InvalidDefinition(f"{line.where}: `--pre` takes no value; write `--pre` alone")
        return flag, "", index + 1
    if flag not in _INCLUDES and flag not in _INDEX_OPTIONS:
        raise InvalidDefinition(
            f"{line.where}: `{flag}` is not supported; {_SUPPORTED}{_HINTS.get(flag, '')}"
        )
    if not equals:
        value, index = (tokens[index + 1] if index + 1 < len(tokens) else ""), index + 1
    if not value:
        raise InvalidDefinition(f"{line.where}: `{flag}` needs a value, e.g. `{flag} VALUE`")
    return flag, value, index + 1


def _include(state: _State, line: _Line, flag: str, value: str) -> None:
    if "://" in value:
        raise InvalidDefinition(
            f"{line.where}: `{flag} {strip_url_credentials(value)}`: including a file from a URL "
            "is not supported; save it beside the requirements file and include it by path"
        )
    try:
        target = resolve_inside(state.top, str(line.folder / value), field=flag)
    except InvalidDefinition:
        raise InvalidDefinition(
            f"{line.where}: `{flag} {value}` points outside {state.shown_top}; keep included "
            "files inside the top requirements file's folder"
        ) from None
    if not target.is_file():
        raise InvalidDefinition(f"{line.where}: `{flag} {value}`: {target} does not exist")
    opened = [resolved for resolved, _ in state.stack]
    if target in opened:
        cycle = [relative for _, relative in state.stack[opened.index(target) :]]
        raise InvalidDefinition(
            f"{line.where}: `{flag} {value}` makes an include cycle "
            f"({' -> '.join([*cycle, cycle[0]])}); remove one of these includes"
        )
    try:
        text = read_text_limited(target, field=flag)
    except InvalidDefinition as exc:
        raise InvalidDefinition(f"{line.where}: {exc.message}") from None
    _read_file(state, target, text, constraint=_INCLUDES[flag])


def _set_index_option(state: _State, line: _Line, flag: str, value: str) -> None:
    if url_has_literal_credentials(value):
        raise InvalidDefinition(
            f"{line.where}: `{flag}` URL carries a plain-text password; write "
            "https://USER:${ENV_VAR}@HOST/... so the secret is read from the environment"
        )
    key = _INDEX_OPTIONS[flag]
    if key == "index_url":
        if state.index_url not in (None, value):
            state.warnings.append(f"{line.where}: `{flag}` replaces an earlier index URL")
        state.index_url = value
    elif key == "extra_index_urls":
        state.extra_index_urls.append(value)
    elif "://" in value and not value.lower().startswith("file:"):
        state.find_links.append(value)
    else:  # a local folder's wheels would not enter the build hash: stale builds, silently
        raise InvalidDefinition(
            f"{line.where}: `{flag} {value}`: local --find-links folders are not supported, "
            "because their content would not enter the build hash; list each wheel by path"
        )


def _add_requirement(state: _State, line: _Line) -> None:
    words = line.text.split()
    cut = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
    body = " ".join(words[:cut])
    hashes = _hashes(line, _split(line, " ".join(words[cut:])))
    where = f"{line.where}: `python.pip.{'constraints' if line.constraint else 'packages'}`"
    try:
        entry = parse_pip_entry(" ".join([body, *hashes]))
    except ValueError as exc:
        raise InvalidDefinition(f"{where}: {exc}") from None
    if line.constraint and (entry.requirement is None or entry.requirement.url):
        raise InvalidDefinition(
            f"{where}: {body!r} is not a constraint; pip constraints are NAME SPEC, such as "
            "'numpy<2', never a URL or a file"
        )
    if entry.kind == "path":
        body = _local_file(state, line, body, where)
    (state.constraints if line.constraint else state.packages).append(" ".join([body, *hashes]))


def _hashes(line: _Line, tokens: list[str]) -> list[str]:
    """``--hash=ALGO:HEX`` options after a requirement, in pip's two spellings."""
    hashes, index = [], 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--hash":
            value, index = (tokens[index + 1] if index + 1 < len(tokens) else ""), index + 2
        elif token.startswith("--hash="):
            value, index = token.removeprefix("--hash="), index + 1
        else:
            raise InvalidDefinition(
                f"{line.where}: `{token.partition('=')[0]}` after a requirement is not "
                "supported; only --hash=ALGO:HEX may follow a requirement"
            )
        if not _HASH.fullmatch(value):
            raise InvalidDefinition(
                f"{line.where}: `--hash={value}` is not a valid hash; write --hash=sha256:HEX "
                "with 64 hex digits (sha384 and sha512 work too)"
            )
        hashes.append(f"--hash={value}")
    return hashes


def _local_file(state: _State, line: _Line, body: str, where: str) -> str:
    """``body`` relative to the top folder, as ``./...``: where resolve_local_inputs looks."""
    # Lexical, not resolved: pip reads a wheel's name and version from the file name.
    candidate = os.path.normpath(line.folder / body)
    relative = Path(os.path.relpath(candidate, state.top))
    try:
        target: Path | None = resolve_inside(state.top, str(relative), field="python.pip.packages")
    except InvalidDefinition:
        target = None
    if target is None or relative.parts[:1] == ("..",):
        raise InvalidDefinition(
            f"{where}: {body!r} points outside {state.shown_top}; keep local wheels inside the "
            "top requirements file's folder"
        )
    if not target.is_file():
        raise InvalidDefinition(f"{where}: {body!r} does not exist (looked for {candidate})")
    return f"./{relative.as_posix()}"
