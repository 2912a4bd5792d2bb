"""Runs: the list (experiment, environment and status filters, paging) and one run (details,
log, metrics as SVG charts, outputs to download); ``kiln run list|show|download``'s core calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from kiln.errors import KilnError
from kiln.runs import core as runs
from kiln.runs.views import LOG_NAME, open_file, summary
from kiln.server.auth import Served
from kiln.server.ui.charts import split_metrics
from kiln.server.ui.events import follow_lines
from kiln.server.ui.pages import Looker, PageRoute, render, tail_text
from kiln.server.ui.paging import PAGE_SIZE, Pages, linker, page_number

router = APIRouter(route_class=PageRoute)
STATUSES = ("Queued", "Preparing", "Running", "Finalizing", "Completed", "Failed", "Canceled")
_MOST = 100_000  # a status filter looks through at most this many of the newest runs


def _matching(
    workspace: Any, experiment: str | None, environment: str | None, status: str, wanted: int
) -> list[dict[str, Any]]:
    """The newest ``wanted`` runs that match. The core filters by experiment and environment;
    the status is filtered here, reading ever more runs until enough match."""
    limit = wanted
    while True:
        found = runs.list_runs(
            workspace, experiment=experiment, environment=environment, limit=limit
        )
        rows = [summary(r) for r in found if not status or r.status == status]
        if len(rows) >= wanted or len(found) < limit or limit >= _MOST:
            return rows[:wanted]
        # Enough rows at the rate seen so far, and a quarter more: most filters take two reads.
        guess = wanted * len(found) // max(len(rows), 1) * 5 // 4
        limit = min(_MOST, max(limit * 2, guess))


@router.get("/runs")
def run_list(
    request: Request,
    workspace: Served,
    viewer: Looker,
    experiment: str = "",
    environment: str = "",
    status: str = "",
    page: str = "",
) -> Response:
    errors: dict[str, str] = {}
    number = page_number(page, errors)
    if status and status not in STATUSES:
        errors["status"] = (
            f"`status`: {status!r} is not a run status; use one of {', '.join(STATUSES)}"
        )
        status = ""
    offset = (number - 1) * PAGE_SIZE
    rows = _matching(
        workspace, experiment.strip() or None, environment.strip() or None, status,
        offset + PAGE_SIZE + 1,
    )  # fmt: skip
    pages = Pages(number, None, len(rows) > offset + PAGE_SIZE)
    query = linker(experiment=experiment, environment=environment, status=status)
    return render(
        request, "runs.html", rows=rows[offset : offset + PAGE_SIZE], pages=pages, query=query,
        errors=errors, experiment=experiment, environment=environment, status=status,
        statuses=STATUSES,
    )  # fmt: skip


def _log_tail(workspace: Any, record: Any) -> tuple[str | None, bool]:
    try:
        return tail_text(open_file(workspace, record, LOG_NAME))
    except KilnError:  # no log yet (a queued run) or none kept
        return None, False


@router.get("/runs/{run_id}")
def run_page(request: Request, workspace: Served, viewer: Looker, run_id: str) -> Response:
    view = runs.describe_run(workspace, run_id)
    charts, values = split_metrics(view.details["metrics"])
    return render(
        request, "run.html", run=view.details, charts=charts, values=values,
        log=_log_tail(workspace, view.record), log_name=LOG_NAME,
    )  # fmt: skip


@router.get("/runs/{run_id}/log/events")
def run_log_events(workspace: Served, viewer: Looker, run_id: str) -> Response:
    """The run's log as it grows, until the run ends (``kiln run show --follow``'s view)."""
    from kiln.runs.ending import get

    get(workspace, run_id)  # an unknown run: 404 before the stream starts
    state: dict[str, Any] = {}

    def finished() -> bool:
        state["record"] = get(workspace, run_id)
        return bool(state["record"].finished)

    def log() -> Path | None:
        try:
            return open_file(workspace, state["record"], LOG_NAME)
        except KilnError:  # not started yet
            return None

    return StreamingResponse(
        follow_lines(log, finished),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/runs/{run_id}/files/{name:path}")
def run_file(workspace: Served, viewer: Looker, run_id: str, name: str) -> FileResponse:
    from kiln.runs.ending import get

    path = open_file(workspace, get(workspace, run_id), name)
    return FileResponse(path, filename=name.rsplit("/", 1)[-1])
