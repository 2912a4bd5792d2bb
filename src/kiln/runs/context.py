"""``Run.get_context()`` inside a training script. Standard library only: this module runs in the
user's environment, where Kiln's own dependencies are not installed.

Kiln puts its package on the script's ``PYTHONPATH`` (never into the environment, so the build
hash and the installed packages stay the user's) and sets ``KILN_RUN_ID`` and ``KILN_RUN_DIR``.
Metrics are appended as JSON lines to ``KILN_RUN_DIR/metrics.jsonl``; the process that watches
the run moves them into the registry when the run ends. Started by hand (no ``KILN_RUN_ID``), a
script gets an offline context that keeps metrics in memory, as Azure ML's does.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kiln.compute import RUN_DIR_VARIABLE as RUN_DIR_VARIABLE  # the variables a target sets
from kiln.compute import RUN_ID_VARIABLE as RUN_ID_VARIABLE

METRICS_FILE = "metrics.jsonl"


def read_metrics(path: Path) -> Iterator[tuple[str, Any, float]]:
    """(name, value, time) of each metric a script appended to ``path``."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            yield str(entry["name"]), entry["value"], float(entry["time"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a killed script


def metrics_view(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Azure's shape: a metric logged once is its value; logged several times, a list."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def checked_metric(name: str, value: Any) -> Any:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric name must be a non-empty string, not {name!r}")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON; keep them readable
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"metric {name!r}: {type(value).__name__} values cannot be logged; log numbers, "
            "strings, booleans, or lists and dicts of them"
        ) from None
    return value


class ScriptRunContext:
    """The run a script was started in by Kiln."""

    offline = False

    def __init__(self, run_id: str, run_dir: Path) -> None:
        self.id = run_id
        self.experiment_name = run_id.rsplit("_", 2)[0]
        self._metrics = run_dir / METRICS_FILE

    def log(self, name: str, value: Any, description: str = "") -> None:
        self._append([(name, value)])

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        self._append(list(metrics.items()))

    def log_list(self, name: str, values: list[Any], description: str = "") -> None:
        self._append([(name, v) for v in values])

    def get_metrics(self) -> dict[str, Any]:
        return metrics_view((name, value) for name, value, _ in read_metrics(self._metrics))

    def _append(self, pairs: list[tuple[str, Any]]) -> None:
        now = time.time()
        lines = "".join(
            json.dumps({"name": n, "value": checked_metric(n, v), "time": now}) + "\n"
            for n, v in pairs
        )
        # One O_APPEND write per call: lines from several threads never interleave.
        handle = os.open(self._metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, lines.encode())
        finally:
            os.close(handle)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r})"


class OfflineRunContext:
    """A script started by hand: metrics are kept in memory and logging never fails."""

    offline = True

    def __init__(self) -> None:
        self.id = f"OfflineRun_{uuid.uuid4()}"
        self.experiment_name = "offline"
        self._logged: list[tuple[str, Any]] = []

    def log(self, name: str, value: Any, description: str = "") -> None:
        self._logged.append((name, checked_metric(name, value)))

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        for name, value in metrics.items():
            self.log(name, value)

    def log_list(self, name: str, values: list[Any], description: str = "") -> None:
        for value in values:
            self.log(name, value)

    def get_metrics(self) -> dict[str, Any]:
        return metrics_view(self._logged)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline)"


def get_context() -> ScriptRunContext | OfflineRunContext:
    run_id, run_dir = os.environ.get(RUN_ID_VARIABLE), os.environ.get(RUN_DIR_VARIABLE)
    if run_id and run_dir and Path(run_dir).is_dir():
        return ScriptRunContext(run_id, Path(run_dir))
    return OfflineRunContext()
