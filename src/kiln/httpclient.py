"""A small client of a Kiln server's JSON API: one request, its answer, and the server's error
turned back into the KilnError the server raised (same message, same exit code)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kiln.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    KilnError,
    NotFound,
    Unauthorized,
    WorkspaceError,
)

if TYPE_CHECKING:
    import httpx

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

        try:
            response = _session().request(
                method,
                self.api_url(path),
                json=json,
                params=params,
                headers=self.auth_headers(),
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

    def api_url(self, path: str) -> str:
        return f"{self.url}{API}{path}"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@contextmanager
def streamed(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: Iterable[bytes] | None = None,
    timeout: float = 300.0,
) -> Iterator[httpx.Response]:
    """One request whose body is sent from ``content`` and whose answer the caller reads as it
    arrives. Errors as ``ServerClient.request`` raises them; only the URL's host is named (a
    presigned URL's query is a credential)."""
    import httpx

    where = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    try:
        with httpx.stream(method, url, headers=headers, content=content, timeout=timeout) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise _error(answer)
            yield answer
    except httpx.HTTPError as exc:
        raise WorkspaceError(
            f"the transfer with {where} failed ({type(exc).__name__}); "
            "check that the server runs and retry"
        ) from None


def _error(response: Any) -> KilnError:
    try:
        detail = str(response.json().get("detail"))
    except (ValueError, AttributeError):
        detail = f"the server answered {response.status_code}"
    kind = _ERRORS.get(response.status_code, WorkspaceError)
    return kind(detail)
