"""``NAME[:VERSION]`` references. Standard library only: the fast read paths parse them too."""

from __future__ import annotations

from kiln.errors import InvalidDefinition

CURATED_PREFIX = "Kiln-"  # the reserved names of the environments that ship with Kiln
# Azure ML reserves these for its curated environments ("Do not start your environment name
# with Microsoft or AzureML", azureml-core's Environment docs): a ported name that starts so
# is refused too, pointing at Kiln's curated equivalent.
AZURE_RESERVED_PREFIXES = ("AzureML-", "Microsoft")


def parse_reference(reference: str) -> tuple[str, str | None]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@latest`` -> (name, version or None for latest)."""
    if "@" in reference:
        name, label = reference.split("@", 1)
        if label != "latest":
            raise InvalidDefinition(
                f"unknown label {label!r} in {reference!r}; only @latest exists"
            )
        return name, None
    name, _, version = reference.partition(":")
    if not name:
        raise InvalidDefinition(f"{reference!r} names no environment; write NAME or NAME:VERSION")
    if ":" in version:
        raise InvalidDefinition(f"{reference!r} has more than one ':'; write NAME or NAME:VERSION")
    return name, (version or None) if version != "latest" else None
