"""``@rawhttp`` and ``AMLRequest`` (Kiln's stand-in): ``run(request)`` receives an
``AMLRequest`` with the parts of Flask's request object that scoring scripts use."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ._headers import Headers

_rawHttpRequested = False  # read by the scoring runtime, as azmlinfsrv reads its own

_F = TypeVar("_F", bound=Callable[..., Any])


def rawhttp(func: _F) -> _F:
    """Mark ``run`` as wanting the request object instead of the body as text."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


class Args:
    """The query string's values, repeated keys kept (Werkzeug's ``MultiDict`` subset)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        for name, value in self._pairs:
            if name == key:
                if type is None:
                    return value
                try:
                    return type(value)
                except ValueError:
                    return default
        return default

    def getlist(self, key: str) -> list[str]:
        return [value for name, value in self._pairs if name == key]

    def __getitem__(self, key: str) -> str:
        for name, value in self._pairs:
            if name == key:
                return value
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self._pairs)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self._pairs))

    def items(self) -> list[tuple[str, str]]:
        return [(key, self[key]) for key in self.keys()]

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        if flat:
            return dict(self.items())
        return {key: self.getlist(key) for key in self.keys()}

    def __iter__(self) -> Any:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


class AMLRequest:
    """One HTTP request to ``/score``: ``method``, ``path``, ``full_path``, ``args``,
    ``headers``, ``data``/``get_data()``, ``get_json()``/``json``, ``form`` (URL-encoded
    bodies), ``content_type``, ``mimetype``, ``url``. Multipart ``files`` need the real
    ``azureml-inference-server-http`` package (Flask's request object)."""

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        host: str = "localhost",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query.encode("latin-1")
        self.headers = Headers(headers)
        self.args = Args(parse_qsl(query, keep_blank_values=True))
        self.remote_addr = remote_addr
        self.scheme = "http"
        self.host = self.headers.get("Host") or host
        self._body = body

    @property
    def full_path(self) -> str:
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def host_url(self) -> str:
        return f"{self.scheme}://{self.host}/"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    @property
    def url(self) -> str:
        query = self.query_string.decode("latin-1")
        return self.base_url + (f"?{query}" if query else "")

    @property
    def url_root(self) -> str:
        return self.host_url

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        length = self.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None

    @property
    def is_json(self) -> bool:
        mimetype = self.mimetype
        return mimetype == "application/json" or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )

    @property
    def data(self) -> bytes:
        return self._body

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        return self._body.decode("utf-8", "replace") if as_text else self._body

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON: None (or ValueError unless ``silent``) when it is not."""
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("Did not attempt to load JSON data because the request "
                             "Content-Type was not 'application/json'.")  # fmt: skip
        try:
            return json.loads(self._body)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def form(self) -> Args:
        if self.mimetype != "application/x-www-form-urlencoded":
            return Args([])
        text = self._body.decode("utf-8", "replace")
        return Args(parse_qsl(text, keep_blank_values=True))

    @property
    def values(self) -> Args:
        return Args(self.args._pairs + self.form._pairs)

    def __repr__(self) -> str:
        return f"<AMLRequest {urlsplit(self.url).geturl()!r} [{self.method}]>"
