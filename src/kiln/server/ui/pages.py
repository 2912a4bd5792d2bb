"""What every page shares: the route class that turns errors into HTML pages (and a missing
session into the login page), the viewer (who looks, and the form token), and rendering."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from kiln.accounts import Actor, authenticate
from kiln.errors import Forbidden, KilnError, Unauthorized
from kiln.secrets import redact
from kiln.server.auth import workspace_of

SESSION_COOKIE = "kiln_session"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["segment"] = lambda text: quote(str(text), safe="")  # one path segment


class LoginNeeded(Exception):
    """No session, or one that ended: the page answers with the login page."""


class Viewer(NamedTuple):
    actor: Actor
    csrf: str  # the form token of this session, in a hidden field of every form
    local: bool  # `kiln ui`: the workspace's owner, no login

    @property
    def writes(self) -> bool:
        return self.actor.role != "reader"


def form_token(key: str) -> str:
    """A session's form token: derived from the session's secret, so nothing more is stored,
    and a page of another site, which cannot read the cookie, cannot make it."""
    return hmac.new(key.encode("utf-8"), b"kiln-ui-form", "sha256").hexdigest()


def current_viewer(request: Request) -> Viewer:
    local: Actor | None = getattr(request.app.state, "ui_local_actor", None)
    if local is not None:
        viewer = Viewer(local, form_token(request.app.state.ui_secret), True)
    else:
        session = request.cookies.get(SESSION_COOKIE)
        if not session:
            raise LoginNeeded
        try:
            actor = authenticate(workspace_of(request), session)
        except Unauthorized:
            raise LoginNeeded from None
        viewer = Viewer(actor, form_token(session), False)
    request.state.viewer = viewer
    return viewer


Looker = Annotated[Viewer, Depends(current_viewer)]


def one_line(text: str) -> str:
    return " ".join(redact(text).split())


def render(request: Request, template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    viewer = getattr(request.state, "viewer", None)
    page = _TEMPLATES.get_template(template).render(viewer=viewer, path=request.url.path, **context)
    return HTMLResponse(page, status, headers=_SECURITY_HEADERS)


# No framing by other sites, no sniffing, and scripts only from the package's own static files.
_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, code=status, message=message)


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)


class PageRoute(APIRoute):
    """A page's errors as pages: a KilnError's status and its one-line message (the CLI's),
    a bad query value as 422, no session as the login page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginNeeded:
                return login_redirect(request)
            except KilnError as exc:
                return error_page(request, exc.status, one_line(str(exc)))
            except RequestValidationError:
                return error_page(request, 422, "the address holds a value that is not valid")

        return handle


async def checked_form(request: Request, viewer: Viewer) -> dict[str, str]:
    """The posted form, once its form token proved it came from one of this session's pages."""
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf):
        raise Forbidden(
            "the form's token is missing or stale; reload the page and send the form again"
        )
    return {key: value for key, value in form.items() if isinstance(value, str)}


LOG_TAIL = 64 * 1024  # a page shows the end of a long log; the whole one is a link away


def tail_text(path: Path) -> tuple[str, bool]:
    """The last ``LOG_TAIL`` bytes of a log as text, and whether it was cut."""
    with path.open("rb") as log:
        size = log.seek(0, 2)
        log.seek(max(0, size - LOG_TAIL))
        return log.read().decode("utf-8", errors="replace"), size > LOG_TAIL
