"""``AMLResponse`` (Kiln's stand-in): what ``run()`` returns for an answer of its own, with the
constructor of azmlinfsrv's (``message, status_code, response_headers, json_str,
run_function_failed``) and the parts of Flask's response object that scripts use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._headers import Headers

_HTML = "text/html; charset=utf-8"


def _body_bytes(message: Any) -> bytes:
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, (bytes, bytearray)):
        return bytes(message)
    # Flask also takes an iterable of str/bytes
    return b"".join(_body_bytes(part) for part in message)


class AMLResponse:
    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        response_headers = response_headers or {}
        self.status_code = int(status_code)
        self.headers = Headers()
        if message is None or json_str:
            self._body = json.dumps({} if message is None else message).encode()
            self.headers.add("Content-Type", "application/json")
        else:
            self._body = _body_bytes(message)
            if not any(name.lower() == "content-type" for name in response_headers):
                self.headers.add("Content-Type", _HTML)
        self.headers["x-ms-run-function-failed"] = run_function_failed
        # A value holding commas is several values of one header, as azmlinfsrv sends it.
        for name, value in response_headers.items():
            for part in value.split(","):
                self.headers.add(name, part.strip())

    @property
    def status(self) -> str:
        return str(self.status_code)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip()

    @property
    def data(self) -> bytes:
        return self._body

    @data.setter
    def data(self, value: str | bytes) -> None:
        self.set_data(value)

    def get_data(self, as_text: bool = False) -> Any:
        return self._body.decode("utf-8") if as_text else self._body

    def set_data(self, value: str | bytes) -> None:
        self._body = _body_bytes(value)

    def __repr__(self) -> str:
        return f"<AMLResponse {len(self._body)} bytes [{self.status_code}]>"
