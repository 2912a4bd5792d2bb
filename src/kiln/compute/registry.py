"""Every kind of compute target, in one typed dict, and the reading of target addresses.

An address names its kind by its URL scheme (``ray://HOST:PORT``); a kind without a scheme is
its own address (``local``). Adding a kind is one module and one entry here.
"""

from __future__ import annotations

from kiln.compute import container, local, ray
from kiln.compute.base import ComputeTarget
from kiln.errors import InvalidRequest

TARGETS: dict[str, ComputeTarget] = {
    "local": local,
    "ray": ray,
    "container": container,
}


def address_forms() -> str:
    """The address of each kind, for messages: "'local', 'ray://HOST:PORT', ..."."""
    return ", ".join(repr(target.address_form) for target in TARGETS.values())


def kind_of(address: str) -> str | None:
    """The kind whose address ``address`` is (by its scheme), or None."""
    scheme, separator, _ = address.partition("://")
    for kind, target in TARGETS.items():
        if separator and target.scheme == scheme:
            return kind
        if not separator and target.bare_address and address == kind:
            return kind
    return None


def target_of(address: str) -> ComputeTarget:
    """The target that runs at ``address`` (a run's recorded compute target)."""
    kind = kind_of(address)
    if kind is None:
        raise InvalidRequest(
            f"`compute_target`: {address!r} is no target's address; use {address_forms()}"
        )
    return TARGETS[kind]


def checked_address(address: str) -> str | None:
    """``address`` stripped and checked by its kind, or None when it is no kind's address (it
    may then be the name of a registered target). Bad addresses of a kind raise."""
    address = address.strip()
    kind = kind_of(address)
    if kind is None:
        return None
    TARGETS[kind].check_address(address)  # bad addresses fail before anything is stored
    return address


def named_forms() -> str:
    """The addresses a target registered by name may have: "ray://HOST:PORT"."""
    return " or ".join(t.address_form for t in TARGETS.values() if t.scheme is not None)


def check_target_name(name: str) -> None:
    """A registered target's name never reads as an address."""
    if kind_of(name) is not None or "://" in name:
        raise InvalidRequest(f"`name`: {name!r} is reserved; pick another name")


def named_target_kind(address: str) -> str:
    """The kind of a target registered by name (``local`` needs no name); bad addresses raise."""
    kind = kind_of(address.strip())
    if kind is None or TARGETS[kind].scheme is None:
        raise InvalidRequest(f"`address`: {address!r} must look like {named_forms()}")
    TARGETS[kind].check_address(address.strip())
    return kind
