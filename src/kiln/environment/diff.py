"""What changed between two definitions, in the words a user thinks in: packages added,
removed and changed (by normalized name), python, base image, env vars, and changes of order
only (which give a new hash, as in Azure ML, but install the same things)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_conda_entry, parse_pip_entry

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)


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


def _pip_key(entry: str) -> str:
    parsed = parse_pip_entry(entry)
    return parsed.name or parsed.text.split(" --hash")[0]


def _conda_key(entry: str) -> str:
    return parse_conda_entry(entry).name


def diff_lists(old: list[str], new: list[str], key: Any = lambda x: x) -> ListDiff:
    """Diff by key: same key with other text is a change; same items in another order is
    a reorder."""
    old_by_key = {key(x): x for x in old}
    new_by_key = {key(x): x for x in new}
    added = [x for k, x in new_by_key.items() if k not in old_by_key]
    removed = [x for k, x in old_by_key.items() if k not in new_by_key]
    changed = [(old_by_key[k], x) for k, x in new_by_key.items() if k in old_by_key and old_by_key[k] != x]
    common_old = [k for k in old_by_key if k in new_by_key]
    common_new = [k for k in new_by_key if k in old_by_key]
    return ListDiff(added, removed, changed, reordered=common_old != common_new)


def _value(old: Any, new: Any) -> dict[str, Any] | None:
    return None if old == new else {"from": old, "to": new}


def _shown(name: str, value: str | None) -> str | None:
    """Env var values are shown unless the name looks like a secret's."""
    return "<redacted>" if value is not None and _SECRET_NAME.search(name) else value


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
        return all(isinstance(v, dict) and v.get("reordered") and not (v["added"] or v["removed"] or v["changed"])
                   for v in self.changes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "same_build": self.same_build,
            "same_definition": self.same_definition,
            "order_only": self.order_only,
            "changes": self.changes,
        }


def diff(old: EnvironmentDefinition, new: EnvironmentDefinition) -> DefinitionDiff:
    op, np_ = old.python, new.python
    lists = {
        "python.conda.channels": diff_lists(op.conda.channels, np_.conda.channels),
        "python.conda.packages": diff_lists(op.conda.packages, np_.conda.packages, _conda_key),
        "python.pip.packages": diff_lists(op.pip.packages, np_.pip.packages, _pip_key),
        "python.pip.constraints": diff_lists(op.pip.constraints, np_.pip.constraints, _pip_key),
        "python.pip.extra_index_urls": diff_lists(op.pip.extra_index_urls, np_.pip.extra_index_urls),
        "python.pip.find_links": diff_lists(op.pip.find_links, np_.pip.find_links),
    }
    changes: dict[str, Any] = {k: v.as_dict() for k, v in lists.items() if not v.empty}
    od, nd = old.docker, new.docker
    values = {
        "python.version": _value(op.version, np_.version),
        "python.user_managed": _value(op.user_managed, np_.user_managed),
        "python.interpreter_path": _value(op.interpreter_path, np_.interpreter_path),
        "python.pip.index_url": _value(op.pip.index_url, np_.pip.index_url),
        "python.pip.pre": _value(op.pip.pre, np_.pip.pre),
        "docker.base_image": _value(od.base_image, nd.base_image),
        "docker.dockerfile": _value(od.dockerfile, nd.dockerfile),
        "docker.build_context": _value(od.build_context_digest, nd.build_context_digest),
        "docker.platform": _value(
            od.platform.model_dump() if od.platform else None, nd.platform.model_dump() if nd.platform else None
        ),
        "spark": _value(old.spark.model_dump(), new.spark.model_dump()),
        "inferencing_stack_version": _value(old.inferencing_stack_version, new.inferencing_stack_version),
    }
    changes.update({k: v for k, v in values.items() if v is not None})
    variables = {
        key: {"from": _shown(key, old.environment_variables.get(key)), "to": _shown(key, new.environment_variables.get(key))}
        for key in sorted(set(old.environment_variables) | set(new.environment_variables))
        if old.environment_variables.get(key) != new.environment_variables.get(key)
    }
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
                verb = "added" if values["from"] is None else "removed" if values["to"] is None else "changed"
                shown = values["to"] if values["to"] is not None else values["from"]
                lines.append(f"env {verb}: {key}" + (f" = {shown}" if verb != "removed" else ""))
        elif "added" in change:
            lines += [f"{where}: + {x}" for x in change["added"]]
            lines += [f"{where}: - {x}" for x in change["removed"]]
            lines += [f"{where}: {c['from']} -> {c['to']}" for c in change["changed"]]
            if change["reordered"]:
                lines.append(f"{where}: order changed (same items)")
        elif where == "docker.dockerfile" or where == "docker.build_context":
            lines.append(f"{where}: content changed")
        else:
            lines.append(f"{where}: {change['from']} -> {change['to']}")
    if result.order_only:
        lines.append("only the order differs: a new build hash, the same packages")
    lines.append("same build" if result.same_build else "different build")
    return lines
