"""Times as every public document shows them: ISO-8601 in UTC. Standard library only."""

from __future__ import annotations

import datetime as dt


def utc_text(value: float | dt.datetime | None, *, timespec: str = "seconds") -> str | None:
    """An epoch or a datetime as ISO-8601 in UTC (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        moment = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec=timespec)
