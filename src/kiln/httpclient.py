"""A small client of a Kiln server's JSON API: one request, its answer, and the server's error
turned back into the KilnError the server raised (same message, same exit code)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    KilnError,
    NotFound,
    Unauthorized,
    WorkspaceError,
)

_ERRORS: dict[int, type[KilnError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    400: InvalidRequest,
}
API = "/api/v1"

if TYPE_CHECKING:
    import httpx

_SESSION: list[httpx.Client] = []


def _session() -> httpx.Client:
    """One client per process: its connections are kept alive and its TLS context is made once
    (measured: making one per request cost 20 ms each, a quarter of a run submitted to a server).
    httpx's clients are safe to share between threads (a run's log is sent from one)."""
    import httpx

    if not _SESSION:
        _SESSION.append(httpx.Client())
    return _SESSION[0]


class ServerClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """The answer's JSON document."""
        return self.send(method, path, json=json, params=params).json()

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """The answer itself (an ``httpx.Response``), once its status says it succeeded."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = _session().request(
                method,
                f"{self.url}{API}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise WorkspaceError(
                f"cannot reach the Kiln server at {self.url} ({type(exc).__name__}); "
                "check the URL and that the server runs"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: Any) -> KilnError:
    try:
        detail = str(response.json().get("detail"))
    except (ValueError, AttributeError):
        detail = f"the server answered {response.status_code}"
    kind = _ERRORS.get(response.status_code, WorkspaceError)
    return kind(detail)
