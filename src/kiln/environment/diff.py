"""What changed between two definitions, in the words a user thinks in: packages added,
removed and changed (by normalized name), python, base image, env vars, and changes of order
only (which give a new hash, as in Azure ML, but install the same things).

Values are compared in the canonical form the digests use, so a diff is empty exactly when the
definition digests are equal: ``NumPy==1.0`` and ``numpy==1.0`` are the same package, and a
local wheel whose content changed is a change even though its path did not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kiln.environment.canonical import build_form, build_hash, definition_digest, definition_form
from kiln.environment.definition import EnvironmentDefinition, PipSection
from kiln.environment.packages import (
    normalize_conda_entry,
    normalize_pip_entry,
    parse_conda_entry,
    parse_pip_entry,
    strip_url_credentials,
)
from kiln.secrets import redact, shown_value


@dataclass(frozen=True)
class ListDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    reordered: bool = False

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.reordered)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": [{"from": a, "to": b} for a, b in self.changed],
            "reordered": self.reordered,
        }


class Item(NamedTuple):
    """One list entry: as written, what pairs it with its counterpart, and what it means."""

    text: str
    key: str
    canonical: str
    shown: str  # how a change of content is shown when ``text`` stays the same


def _items(
    entries: list[str], key: Callable[[str], str], canon: Callable[[str], str]
) -> list[Item]:
    return [Item(e, key(e), canon(e), e) for e in entries]


def _by_occurrence(items: list[Item]) -> dict[tuple[str, int], Item]:
    """The n-th item with a key pairs with the n-th of the other list: duplicates stay apart."""
    seen: Counter[str] = Counter()
    keyed = {}
    for item in items:
        keyed[(item.key, seen[item.key])] = item
        seen[item.key] += 1
    return keyed


def diff_items(old: list[Item], new: list[Item]) -> ListDiff:
    """Same key with another canonical form is a change; the same keys in another order (and
    nothing else) is a reorder."""
    old_keyed, new_keyed = _by_occurrence(old), _by_occurrence(new)
    changed = []
    for k, item in new_keyed.items():
        before = old_keyed.get(k)
        if before is not None and before.canonical != item.canonical:
            same_text = before.text == item.text
            changed.append((before.shown, item.shown) if same_text else (before.text, item.text))
    return ListDiff(
        added=[x.text for k, x in new_keyed.items() if k not in old_keyed],
        removed=[x.text for k, x in old_keyed.items() if k not in new_keyed],
        changed=changed,
        reordered=[k for k in old_keyed if k in new_keyed]
        != [k for k in new_keyed if k in old_keyed],
    )


def diff_lists(old: list[str], new: list[str], key: Callable[[str], str] = lambda x: x) -> ListDiff:
    """Diff plain strings by ``key``; entries are the same when their text is."""
    return diff_items(_items(old, key, lambda x: x), _items(new, key, lambda x: x))


def _pip_items(pip: PipSection, entries: list[str]) -> list[Item]:
    items = []
    for entry in entries:
        parsed = parse_pip_entry(entry)
        digest = pip.file_digests.get(entry)
        key = parsed.name or parsed.text.split(" --hash")[0]
        if parsed.kind == "path" and digest is None:
            items.append(Item(entry, key, entry, entry))  # not read yet: compare as written
            continue
        shown = f"{entry} (sha256 {digest[:12]})" if digest else entry
        items.append(Item(entry, key, normalize_pip_entry(parsed, digest), shown))
    return items


def _conda_items(entries: list[str], has_pip_packages: bool) -> list[Item]:
    items = [
        Item(e, parse_conda_entry(e).name, normalize_conda_entry(parse_conda_entry(e)), e)
        for e in entries
    ]
    if has_pip_packages or [i.canonical for i in items] == ["pip"]:
        items = [i for i in items if i.canonical != "pip"]  # implied, as in the build hash
    return items


def _url_items(urls: list[str]) -> list[Item]:
    """URLs without credentials, which never enter a digest (only ${VAR} references can)."""
    return _items(urls, strip_url_credentials, strip_url_credentials)


def _channel(url: str) -> str:
    return strip_url_credentials(url).rstrip("/")  # as in the build hash


def _lists(old: EnvironmentDefinition, new: EnvironmentDefinition) -> dict[str, ListDiff]:
    op, np_ = old.python, new.python

    def channels(d: EnvironmentDefinition) -> list[Item]:
        # Shown redacted: a definition registered before passwords were refused may hold one.
        return [
            Item(redact(c), _channel(c), _channel(c), redact(c)) for c in d.python.conda.channels
        ]

    return {
        "python.conda.channels": diff_items(channels(old), channels(new)),
        "python.conda.packages": diff_items(
            _conda_items(op.conda.packages, bool(op.pip.packages)),
            _conda_items(np_.conda.packages, bool(np_.pip.packages)),
        ),
        "python.pip.packages": diff_items(
            _pip_items(op.pip, op.pip.packages), _pip_items(np_.pip, np_.pip.packages)
        ),
        "python.pip.constraints": diff_items(
            _pip_items(op.pip, op.pip.constraints), _pip_items(np_.pip, np_.pip.constraints)
        ),
        "python.pip.extra_index_urls": diff_items(
            _url_items(op.pip.extra_index_urls), _url_items(np_.pip.extra_index_urls)
        ),
        "python.pip.find_links": diff_items(
            _url_items(op.pip.find_links), _url_items(np_.pip.find_links)
        ),
    }


def _at(form: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a canonical form; absent means default."""
    value: Any = form
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _registry(definition: EnvironmentDefinition) -> dict[str, str] | None:
    registry = definition.docker.base_image_registry
    shown = {k: v for k, v in (registry.model_dump() if registry else {}).items() if v}
    return shown or None  # the password is only ever a ${VAR} reference


# Single-valued fields, compared where the build form holds them (same paths as here).
_BUILD_FIELDS = (
    "python.version",
    "python.user_managed",
    "python.interpreter_path",  # in the build only when user_managed
    "python.pip.index_url",  # without credentials
    "python.pip.pre",
    "docker.base_image",
    "docker.dockerfile",  # normalized line ends and trailing spaces
    "docker.build_context",  # the content digest
    "docker.git_commit",  # a git context's commit
    "docker.git_subfolder",
    "docker.dockerfile_path",
    "docker.platform",
    "spark",
    "inferencing_stack_version",
)
# Fields better shown as written than in their canonical form (where False is left out).
_SHOWN_AS_WRITTEN: dict[str, Callable[[EnvironmentDefinition], Any]] = {
    "python.user_managed": lambda d: d.python.user_managed,
    "python.interpreter_path": lambda d: d.python.interpreter_path,
    "python.pip.index_url": lambda d: d.python.pip.index_url,
    "python.pip.pre": lambda d: d.python.pip.pre,
}


def _values(old: EnvironmentDefinition, new: EnvironmentDefinition) -> dict[str, Any]:
    old_build, new_build = build_form(old), build_form(new)
    compared = {path: (_at(old_build, path), _at(new_build, path)) for path in _BUILD_FIELDS}
    compared["docker.base_image_registry"] = (_registry(old), _registry(new))
    old_form, new_form = definition_form(old), definition_form(new)
    for path in ("inference_config", "docker_run", "git_context"):  # not in the build
        compared[path] = (_at(old_form, path), _at(new_form, path))
    changes = {}
    for path, (before, after) in compared.items():
        if before != after:
            show = _SHOWN_AS_WRITTEN.get(path)
            before, after = (show(old), show(new)) if show else (before, after)
            changes[path] = {"from": before, "to": after}
    return changes


def _variables(old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    return {
        key: {"from": shown_value(key, old.get(key)), "to": shown_value(key, new.get(key))}
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


@dataclass(frozen=True)
class DefinitionDiff:
    same_build: bool
    same_definition: bool
    changes: dict[str, Any]

    @property
    def order_only(self) -> bool:
        """True when the definitions differ only in the order of packages or channels."""
        if self.same_definition or not self.changes:
            return False
        return all(
            isinstance(v, dict)
            and v.get("reordered")
            and not (v["added"] or v["removed"] or v["changed"])
            for v in self.changes.values()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "same_build": self.same_build,
            "same_definition": self.same_definition,
            "order_only": self.order_only,
            "changes": self.changes,
        }


def diff(old: EnvironmentDefinition, new: EnvironmentDefinition) -> DefinitionDiff:
    changes: dict[str, Any] = {k: v.as_dict() for k, v in _lists(old, new).items() if not v.empty}
    changes.update(_values(old, new))
    variables = _variables(old.environment_variables, new.environment_variables)
    if variables:
        changes["environment_variables"] = variables
    return DefinitionDiff(
        same_build=build_hash(old) == build_hash(new),
        same_definition=definition_digest(old) == definition_digest(new),
        changes=changes,
    )


def describe(result: DefinitionDiff) -> list[str]:
    """Human-readable lines, one change per line."""
    lines: list[str] = []
    for where, change in result.changes.items():
        if where == "environment_variables":
            for key, values in change.items():
                # The values are already hidden where the name looks like a secret's.
                old, new = values["from"], values["to"]
                if old is None:
                    lines.append(f"env added: {key} = {new}")
                elif new is None:
                    lines.append(f"env removed: {key} (was {old})")
                else:
                    lines.append(f"env changed: {key}: {old} -> {new}")
        elif "added" in change:
            lines += [f"{where}: + {x}" for x in change["added"]]
            lines += [f"{where}: - {x}" for x in change["removed"]]
            lines += [f"{where}: {c['from']} -> {c['to']}" for c in change["changed"]]
            if change["reordered"]:
                lines.append(f"{where}: order changed (same items)")
        elif where in ("docker.dockerfile", "docker.build_context"):
            lines.append(f"{where}: content changed")
        else:
            lines.append(f"{where}: {change['from']} -> {change['to']}")
    if result.order_only:
        lines.append("only the order differs: a new build hash, the same packages")
    lines.append("same build" if result.same_build else "different build")
    return lines
