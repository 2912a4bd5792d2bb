"""Solving conda specs with py-rattler for the conda builder (see conda.py for the decisions):
channels strictly in priority order, for this machine's subdir and noarch, against this
machine's Python offered as a virtual package; errors that name the channel or the spec."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kiln.builders.base import BuildContext, BuildError, Target
from kiln.builders.condachannels import Channel, client, refused

if TYPE_CHECKING:
    from rattler import Gateway, RepoDataRecord, Subdir

_FIELDS = (  # what a lock keeps of each record: enough to install exactly it, nothing that varies
    "name", "version", "build", "build_number", "subdir", "noarch", "depends", "constrains",
    "size", "sha256", "md5", "fn", "url", "channel",
)  # fmt: skip


def solve(
    specs: list[str], channels: list[Channel], target: Target, ctx: BuildContext
) -> list[dict[str, Any]]:
    """The lock's records for ``specs``, sorted by name (the same solve gives the same text)."""
    import asyncio  # here, not at the top: ``kiln.builders`` is imported on quick CLI paths

    solved = asyncio.run(_solve(specs, channels, target, ctx))
    return sorted((_entry(r) for r in solved), key=lambda e: (e["name"], e["version"]))


async def _solve(
    specs: list[str], channels: list[Channel], target: Target, ctx: BuildContext
) -> list[RepoDataRecord]:
    """Solve ``specs`` from ``channels`` (named in messages as written)."""
    import rattler
    from rattler import GenericVirtualPackage, VirtualPackage
    from rattler.exceptions import GatewayError, SolverError

    sources, shown = [c.source for c in channels], [c.written for c in channels]
    gateway = rattler.Gateway(
        cache_dir=ctx.uv_cache.parent / "conda-repodata", client=client(channels)
    )
    await _check_available(gateway, specs, channels)
    # The minor version (3.11, i.e. 3.11.0): the lock is keyed by it, so any 3.11.x must do.
    minor = ".".join(target.python_version.split(".")[:2])
    python = GenericVirtualPackage(
        rattler.PackageName("python"), rattler.Version(minor), rattler.BuildString("0")
    )
    machine: list[VirtualPackage | GenericVirtualPackage] = [*VirtualPackage.detect(), python]
    try:
        return await rattler.solve(
            sources, specs, gateway=gateway, platforms=_platforms(), virtual_packages=machine
        )
    except SolverError as exc:
        raise BuildError(
            f"the conda packages {', '.join(specs)} cannot be installed together from "
            f"{', '.join(shown)} (with Python {minor} from this machine):\n"
            f"{str(exc).strip()}"
        ) from None
    except GatewayError as exc:
        message = refused(str(exc), channels)
        raise BuildError(
            message or f"reading the conda channels {', '.join(shown)} failed: {exc}"
        ) from None


async def _check_available(gateway: Gateway, specs: list[str], channels: list[Channel]) -> None:
    """Every channel can be read and every spec matches a package in one of them: the two
    errors that deserve a message naming the channel or the spec (the solver's do not)."""
    from rattler import MatchSpec
    from rattler.exceptions import GatewayError, InvalidMatchSpecError

    wanted = []
    for spec in specs:
        try:
            wanted.append(MatchSpec(spec))
        except InvalidMatchSpecError as exc:
            raise BuildError(f"`python.conda.packages`: {spec!r} is not valid: {exc}") from None
    found = []
    for channel in channels:
        try:
            result = await gateway.query([channel.source], _platforms(), wanted, recursive=False)
        except GatewayError as exc:
            raise BuildError(
                refused(str(exc), [channel])
                or f"the conda channel {channel.written} cannot be read ({_cause(exc)}); check "
                "its name, URL or path (a local channel is a folder with noarch/repodata.json)"
            ) from None
        found += [record for records in result for record in records]
    for spec, match in zip(specs, wanted, strict=True):
        if not any(record.matches(match) for record in found):
            raise BuildError(
                f"the conda package {spec!r} is in none of the channels "
                f"{', '.join(c.written for c in channels)} "
                f"(for {subdir()} or noarch); check its name and version, or add its channel"
            )


def _cause(exc: Exception) -> str:
    """The innermost cause of a rattler error (its last ``Caused by:`` line)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("Caused by:").strip() if lines else type(exc).__name__


def _entry(record: RepoDataRecord) -> dict[str, Any]:
    data = json.loads(record.to_json())
    data.setdefault("depends", [])
    data.setdefault("constrains", [])
    return {key: data.get(key) for key in _FIELDS}


def subdir() -> str:
    from rattler import Subdir

    return str(Subdir.current())


def _platforms() -> list[Subdir]:
    from rattler import Subdir

    return [Subdir.current(), Subdir("noarch")]
