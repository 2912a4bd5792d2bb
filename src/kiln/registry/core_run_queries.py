"""``run_queries`` and ``target_queries`` as one module, the SQLAlchemy side of ``RunQueries``."""

from __future__ import annotations

from kiln.registry.run_queries import (
    find_runs,
    get_run,
    insert_metrics,
    insert_run,
    list_metrics,
    take_over_run,
    update_run,
)
from kiln.registry.target_queries import delete_target, list_targets, put_target

__all__ = [
    "delete_target",
    "find_runs",
    "get_run",
    "insert_metrics",
    "insert_run",
    "list_metrics",
    "list_targets",
    "put_target",
    "take_over_run",
    "update_run",
]
