"""What every format module shares: the load result, safe YAML/JSON parsing (YAML through the
one bounded loader of ``yaml_loader``), atomic writes, and reading the local files a definition
names so their content enters the digests.

A format module has ``load(path) -> Loaded`` and ``save(definition, path) -> list[Path]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.files import (
    context_files,
    file_digest,
    read_text_limited,
    resolve_inside,
    tree_digest,
)
from kiln.environment.packages import parse_pip_entry
from kiln.errors import InvalidDefinition

# The one YAML loader (bounded aliases, depth and size): format modules import it from here.
from kiln.formats.yaml_loader import MAX_YAML_DEPTH, TOO_LONG_NUMBER
from kiln.formats.yaml_loader import compose_yaml as compose_yaml
from kiln.formats.yaml_loader import parse_yaml as parse_yaml


@dataclass(frozen=True)
class Loaded:
    """A definition read from files, with warnings the user must see (never secrets)."""

    definition: EnvironmentDefinition
    warnings: tuple[str, ...] = field(default_factory=tuple)
    files: tuple[Path, ...] = field(default_factory=tuple)


class RegisteredReference(InvalidDefinition):
    """A file naming only a registered environment (azureml-core's EnvironmentReference): a
    caller with a workspace resolves it (``catalog.resolve_reference``); without one, this
    error says what the file is."""

    def __init__(self, source: str, name: str, version: str | None) -> None:
        self.source, self.name, self.version = source, name, version
        self.reference = f"{name}:{version}" if version else name
        super().__init__(
            f"{source} holds only `name` and `version`: a reference to the registered "
            f"environment {self.reference}, which needs a workspace to resolve; open one "
            "(--workspace, KILN_WORKSPACE) or export the environment in full"
        )


def parse_json(text: str, *, source: str) -> Any:
    """The data of a JSON file, nested no deeper than a YAML one may be (``MAX_YAML_DEPTH``)."""
    try:
        data = json.loads(text, object_pairs_hook=_object_without_duplicates(source))
    except json.JSONDecodeError as exc:
        raise InvalidDefinition(
            f"{source} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError:  # the one other failure: a number Python will not convert
        raise InvalidDefinition(f"{source} is not valid JSON: {TOO_LONG_NUMBER}") from None
    except RecursionError:  # the decoder recurses once per level: 100,000 levels end here
        raise _too_deep(source) from None
    if _nesting_depth(data) > MAX_YAML_DEPTH:
        raise _too_deep(source)
    return data


def _object_without_duplicates(source: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A JSON object hook refusing a key written twice: ``json`` would keep the last one
    silently, so a definition would not say what its reader sees."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                shown = key if key.isprintable() else repr(key)  # the message stays one line
                raise InvalidDefinition(f"{source}: duplicate key `{shown}`; keep one of them")
            data[key] = value
        return data

    return build


def _too_deep(source: str) -> InvalidDefinition:
    return InvalidDefinition(
        f"{source}: nesting deeper than {MAX_YAML_DEPTH} levels; a definition needs a few "
        "levels: flatten it"
    )


def _nesting_depth(data: Any) -> int:
    """How many values deep ``data`` goes (a scalar: 1), walked without recursion."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            pending.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            pending.extend((child, depth + 1) for child in value)
    return deepest


def read_mapping(path: Path, *, kind: str = "yaml") -> dict[str, Any]:
    text = read_text_limited(path, field=path.name)
    data = (
        parse_json(text, source=str(path)) if kind == "json" else parse_yaml(text, source=str(path))
    )
    if not isinstance(data, dict):
        raise InvalidDefinition(
            f"{path} must hold a mapping of keys to values, not {type(data).__name__}"
        )
    return data


class _Dumper(yaml.SafeDumper):
    """Double-quotes strings holding line breaks YAML would fold away when reading them back."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(c in value for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def write_files_atomically(target: Path, files: Mapping[str, bytes | Path]) -> list[Path]:
    """Write ``files`` (relative name -> bytes, or a folder to copy) into ``target``.

    Everything is staged in a sibling temporary folder first and each entry is moved into place
    only once all are written, so a failure midway leaves ``target`` as it was.
    """
    for name in files:
        if Path(name).as_posix() in ("", ".") or ".." in Path(name).parts:
            raise InvalidDefinition(
                f"cannot write {name!r} into {target}: it must be a path inside it"
            )
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kiln-write-", dir=target))
    try:
        for name, content in files.items():
            staged = staging / name
            staged.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path) and content.is_dir():
                _copy_kept_files(content, staged)
            elif isinstance(content, Path):
                shutil.copyfile(content, staged)
            else:
                staged.write_bytes(content)
            if staged.is_file():
                with staged.open("rb") as handle:
                    os.fsync(handle.fileno())
        written = []
        for name in files:
            final = target / name
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(staging / name, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_kept_files(folder: Path, destination: Path) -> None:
    """Copy a build context's kept files only: what .gitignore/.kilnignore leave out (a .env,
    logs, data) is not part of the context and must not travel with it."""
    destination.mkdir(parents=True, exist_ok=True)
    for relative, path in context_files(folder):
        copy = destination / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)


def resolve_local_inputs(
    definition: EnvironmentDefinition, base_dir: Path
) -> EnvironmentDefinition:
    """Read the local files a definition names (wheels, build context) and record their digests.

    Paths stay as written (relative to ``base_dir``, which they may not leave): only the digests
    enter the hashes, and a registered definition's files live in the artifact store by digest.
    Digests are always recomputed from disk. Returns a new definition.
    """
    updated = definition.model_copy(deep=True)
    pip = updated.python.pip
    digests: dict[str, str] = {}
    for index, entry in enumerate(pip.packages):
        parsed = parse_pip_entry(entry)
        if parsed.kind != "path":
            continue
        path = resolve_inside(base_dir, local_path_of(entry), field=f"python.pip.packages[{index}]")
        if not path.is_file():
            raise InvalidDefinition(f"`python.pip.packages[{index}]`: {path} does not exist")
        digests[entry] = file_digest(path)
    pip.file_digests = digests
    docker = updated.docker
    if docker.git_context is not None:
        docker.build_context_digest = None
        return pin_git_context(updated)
    if not docker.build_context:
        docker.build_context_digest = None
    else:
        context = resolve_inside(base_dir, docker.build_context, field="docker.build_context")
        if not context.is_dir():
            missing = "is not a folder" if context.exists() else "does not exist"
            raise InvalidDefinition(
                f"`docker.build_context`: the folder {context} {missing}; create it with the "
                "Dockerfile inside, or point build_context (build.path) at the folder that holds it"
            )
        resolve_inside(
            context, docker.dockerfile_path or "Dockerfile", field="docker.dockerfile_path"
        )
        if not (context / (docker.dockerfile_path or "Dockerfile")).is_file():
            raise InvalidDefinition(
                f"`docker.dockerfile_path`: {docker.dockerfile_path or 'Dockerfile'} not found in "
                f"{context}; add it or set dockerfile_path"
            )
        docker.build_context_digest = tree_digest(context)
    return updated


def pin_git_context(definition: EnvironmentDefinition) -> EnvironmentDefinition:
    """A definition whose git build context has its commit: the one its ref names now (a
    commit already recorded is kept). Returns a new definition."""
    from kiln import gitremote

    docker = definition.docker
    git = docker.git_context
    if git is None or docker.build_context_commit is not None:
        return definition
    commit = gitremote.pin(
        git.url,
        git.ref,
        git.subfolder,
        docker.dockerfile_path or "Dockerfile",
        pinned=git.pinned_ref,
    )
    updated = definition.model_copy(deep=True)
    updated.docker.build_context_digest = None
    updated.docker.build_context_commit = commit
    return updated


def local_path_of(entry: str) -> str:
    """The file path of a local pip entry (without its ``--hash`` options)."""
    return entry.split(" --hash")[0].strip()


def name_from_folder(folder: Path, fallback: str = "environment") -> str:
    """A valid environment name made from a folder's name (``my env`` -> ``my-env``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._")[:255]
    return cleaned or fallback


def known_keys(data: Mapping[str, Any], allowed: set[str], *, where: str, source: str) -> None:
    """Refuse keys a format does not define, naming the key and the valid ones."""
    for key in data:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            fix = (
                f"did you mean `{close[0]}`?"
                if close
                else f"valid keys: {', '.join(sorted(allowed))}"
            )
            raise InvalidDefinition(f"unknown key `{where}{key}` in {source}; {fix}")


ContentLookup = Callable[[str], "Path | None"]
"""Finds stored content by sha256: a wheel file, or a build context folder by its tree digest."""


def local_files_for_save(
    definition: EnvironmentDefinition, *, source_dir: Path | None, lookup: ContentLookup | None
) -> dict[str, Path]:
    """The local inputs a saved copy needs beside it: relative path -> file or folder to copy.

    Content comes from the folder the definition was read from while it still matches its
    digest, else from the artifact store by digest; a definition never saves without them.
    """
    wanted: list[tuple[str, str, bool]] = [
        (local_path_of(entry), digest, False)
        for entry, digest in definition.python.pip.file_digests.items()
        if parse_pip_entry(entry).kind == "path"  # wheel:NAME lives in the workspace, not beside
    ]
    docker = definition.docker
    if docker.build_context and docker.build_context_digest:
        wanted.append((docker.build_context, docker.build_context_digest, True))
    files: dict[str, Path] = {}
    for relative, digest, is_tree in wanted:
        key = Path(relative).as_posix().removeprefix("./")
        found = _matching_source(source_dir, relative, digest, is_tree)
        found = found or (lookup(digest) if lookup else None)
        if found is None:
            raise InvalidDefinition(
                f"the content of {relative!r} (sha256 {digest[:12]}) is neither in "
                f"{source_dir or 'the source folder'} nor in the workspace; register it from a "
                "folder that holds it"
            )
        files[key] = found
    return files


def _matching_source(
    source_dir: Path | None, relative: str, digest: str, is_tree: bool
) -> Path | None:
    if source_dir is None:
        return None
    candidate = source_dir / relative
    if is_tree:
        return candidate if candidate.is_dir() and tree_digest(candidate) == digest else None
    return candidate if candidate.is_file() and file_digest(candidate) == digest else None
