"""Log in with a personal access token, log out. The token is exchanged for a session token
(``websessions.open_session``) kept in an HttpOnly, SameSite=Strict cookie: the personal token is
never stored in the browser, and the session can be revoked like any token."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from kiln.errors import Unauthorized
from kiln.server.auth import workspace_of
from kiln.server.ui.pages import (
    SESSION_COOKIE,
    Looker,
    PageRoute,
    checked_form,
    one_line,
    render,
)
from kiln.websessions import close_session, open_session

router = APIRouter(route_class=PageRoute)
# The login form has no session yet: its token is a random value also set as a cookie
# (double submit), so another site cannot post a login of its own choosing.
_LOGIN_COOKIE = "kiln_login"


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another one."""
    # "//host" and "/\\host" are other sites to a browser
    if not target or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return "/environments"
    parts = urlsplit(target)
    return "/environments" if parts.scheme or parts.netloc else target


def _cookie_flags(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}


def _login_page(request: Request, status: int, next_page: str, error: str | None) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status, next_page=next_page, login_token=nonce, error=error
    )
    response.set_cookie(_LOGIN_COOKIE, nonce, max_age=3600, path="/login", **_cookie_flags(request))  # type: ignore[arg-type]
    return response


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/environments", 303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if getattr(request.app.state, "ui_local_actor", None) is not None:
        return RedirectResponse(_safe_next(next), 303)  # `kiln ui`: the owner needs no login
    return _login_page(request, 200, _safe_next(next), None)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    login_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(_LOGIN_COOKIE, "")
    target = _safe_next(next)
    if not expected or not hmac.compare_digest(expected, login_token):
        message = "the login form is stale or came from another site; send it again"
        return _login_page(request, 403, target, message)
    if not token.strip():
        message = (
            "`token`: paste a personal access token; an admin makes one with `kiln token create`"
        )
        return _login_page(request, 422, target, message)
    try:
        _, session = open_session(workspace_of(request), token.strip())
    except Unauthorized as exc:
        return _login_page(request, 401, target, one_line(str(exc)))
    response = RedirectResponse(target, 303)
    response.set_cookie(SESSION_COOKIE, session, path="/", **_cookie_flags(request))  # type: ignore[arg-type]
    response.delete_cookie(_LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, viewer: Looker) -> Response:
    await checked_form(request, viewer)
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        close_session(workspace_of(request), session)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
