"""A build or a resolution that failed moments ago is not tried again (``--retry`` does): the
refusal both build paths raise, with one wording (builds, buildlocks and kiln.fastbuild)."""

from __future__ import annotations

import time
from typing import Any

from kiln.builders.base import BuildError


class RecentFailure(BuildError):
    """The same build failed moments ago: not run again (and not recorded again, so
    ``kiln env logs`` keeps showing the log of the real attempt)."""


def resolving_failed(failure: dict[str, Any]) -> RecentFailure:
    """``failure``: what cache.recent_failure remembered of a resolution."""
    return RecentFailure(
        f"resolving failed {time.time() - failure['time']:.0f} s ago: {failure['error']} "
        "(see `kiln env logs`; pass --retry to try again now)"
    )


def building_failed(failure: dict[str, Any], reference: str) -> RecentFailure:
    """``failure``: what cache.recent_failure remembered of building ``reference``."""
    return RecentFailure(
        f"this environment failed to build {time.time() - failure['time']:.0f} s ago: "
        f"{failure['error']} (see `kiln env logs {reference}`; "
        f"`kiln env build {reference} --retry` tries again now)"
    )
