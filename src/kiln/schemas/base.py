"""What every public schema shares: snake_case names, no unknown fields, ISO-8601 UTC times
(``kiln.utctime.utc_text``).

These models are the contract of every ``--json`` output and of the server's API. The CLI's
fast paths build plain dicts of the same shape (so ``kiln env list`` never imports pydantic);
the tests validate every ``--json`` output against the JSON Schema generated from here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Public(BaseModel):
    """A public document: unknown fields are an error, so a schema cannot drift silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
