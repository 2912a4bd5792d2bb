"""Named compute targets (``kiln target add gpu ray://HOST:PORT``) and the address a run's
``compute_target`` stands for. Addresses are read by the kinds of ``kiln.compute.registry``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.compute import DEFAULT_TARGET
from kiln.compute.registry import (
    address_forms,
    check_target_name,
    checked_address,
    named_forms,
    named_target_kind,
)
from kiln.errors import InvalidRequest, NotFound
from kiln.runs.store import RunStore
from kiln.secrets import redact
from kiln.utctime import utc_text

if TYPE_CHECKING:
    from kiln.workspace import Workspace


def address_of(store: RunStore, target: str | None) -> str:
    """The address of ``target``: an address of a kind of target (checked by its kind, so a bad
    one fails before anything is stored), or the name of a registered target."""
    target = (target or DEFAULT_TARGET).strip()
    address = checked_address(target)
    if address is not None:
        return address
    for known in store.targets():
        if known["name"] == target:
            return str(known["address"])
    raise InvalidRequest(
        f"`compute_target`: unknown target {target!r}; use {address_forms()}, or add it with "
        f"`kiln target add {target} {named_forms()}`"
    )


def add_target(workspace: Workspace, *, name: str, address: str) -> dict[str, Any]:
    """Name the target at ``address`` (replacing a target of that name); returns it."""
    check_target_name(name)
    kind = named_target_kind(address)
    store = RunStore(workspace)
    try:
        store.add_target(name, kind, address)
    finally:
        store.close()
    return {"name": name, "kind": kind, "address": address}


def list_targets(workspace: Workspace) -> list[dict[str, Any]]:
    """Every named target: name, kind, address, created_at."""
    store = RunStore(workspace)
    try:
        found = store.targets()
    finally:
        store.close()
    # A password stored before addresses were checked for one is still never shown.
    return [
        {**t, "address": redact(str(t["address"])), "created_at": utc_text(t["created_at"])}
        for t in found
    ]


def remove_target(workspace: Workspace, *, name: str) -> None:
    store = RunStore(workspace)
    try:
        if not store.remove_target(name):
            raise NotFound(f"no target {name!r}; see `kiln target list`")
    finally:
        store.close()
