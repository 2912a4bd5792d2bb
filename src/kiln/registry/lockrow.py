"""A stored lock as the build core reads it, from either path: the SQLAlchemy queries
(lock_queries.py) or the standard-library ones of a warm build (fastbuilds.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LockRow:
    build_hash: str
    platform: str
    generation: int
    lock_digest: str
    lock_format: str
    lock_text: str
    packages: list[dict[str, str]]
    resolver: str
    created_at: dt.datetime


def lock_digest(text: str) -> str:
    """The digest a lock row records of its text (and every build checks against it)."""
    return hashlib.sha256(text.encode()).hexdigest()
