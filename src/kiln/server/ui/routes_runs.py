"""Runs: the list (experiment, environment and status filters, paged in the database by the
core) and one run (details, log, metrics as SVG charts, outputs to download); ``kiln run
list|show|download``'s core calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from kiln.errors import KilnError
from kiln.runs import core as runs
from kiln.runs.store import check_status
from kiln.runs.views import LOG_NAME, open_file, summary
from kiln.server.auth import Served
from kiln.server.ui.charts import split_metrics
from kiln.server.ui.events import follow_lines
from kiln.server.ui.pages import Looker, PageRoute, render, tail_text
from kiln.server.ui.paging import PAGE_SIZE, Pages, linker, page_number

router = APIRouter(route_class=PageRoute)


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
    if status:
        try:
            check_status(status)
        except KilnError as exc:  # the line `kiln run list --status` gives, beside the field
            errors["status"], status = str(exc), ""
    # One more than a page: whether there is a next one, without counting.
    found = runs.list_runs(
        workspace, experiment=experiment.strip() or None,
        environment=environment.strip() or None, status=status or None,
        limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE,
    )  # fmt: skip
    pages = Pages(number, None, len(found) > PAGE_SIZE)
    query = linker(experiment=experiment, environment=environment, status=status)
    return render(
        request, "runs.html", rows=[summary(r) for r in found[:PAGE_SIZE]], pages=pages,
        query=query, errors=errors, experiment=experiment, environment=environment,
        status=status, statuses=runs.STATUSES,
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
def run_file(
    request: Request, workspace: Served, viewer: Looker, run_id: str, name: str
) -> FileResponse:
    from kiln.runs.ending import get

    store = request.app.state.artifacts  # outputs a member's machine uploaded are there
    path = open_file(workspace, get(workspace, run_id), name, store=store)
    return FileResponse(path, filename=name.rsplit("/", 1)[-1])
