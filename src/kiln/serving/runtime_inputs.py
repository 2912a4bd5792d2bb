"""What ``run()`` receives for a request, by how the script asks for it (azmlinfsrv's input
parsers), and the answer a ``@rawhttp`` ``run()`` returns, as a :class:`Response`.

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import sys
from typing import Any
from urllib.parse import parse_qsl

from kiln.serving.runtime_protocol import Request, Response
from kiln.serving.scoring_script import API, SHIMS, Parameter


class InputError(Exception):
    """A request whose input ``run()`` cannot take: its status (400, 415) and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_or_text(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


def query_values(query: str) -> dict[str, object]:
    """``a=1&b=x&b=y`` → ``{"a": 1, "b": ["x", "y"]}``: each value parsed as JSON when it is
    JSON, repeated keys as a list."""
    values: dict[str, list[object]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, []).append(_json_or_text(value))
    return {k: v[0] if len(v) == 1 else v for k, v in values.items()}


def text_input(request: Request) -> str:
    """An undecorated ``run``'s input: the body as text (a 400 if it is not UTF-8), or for a
    GET the query as a JSON object."""
    if request.method != "POST":
        return json.dumps(query_values(request.query))
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(400, f"Input cannot be decoded as UTF-8: {exc}") from None


def is_json(content_type: str | None) -> bool:
    """Werkzeug's test: ``application/json`` or ``application/*+json``."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def schema_inputs(request: Request, parameters: list[Parameter]) -> dict[str, object]:
    """An ``@input_schema`` ``run``'s arguments: each parameter's value from the JSON body (or
    the query, for a GET), its default when absent; inference-schema converts them."""
    if request.method != "POST":
        body: object = query_values(request.query)
    elif not is_json(request.headers.get("content-type")):
        raise InputError(415, "Expects Content-Type to be application/json")
    else:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            if request.body:
                raise InputError(400, f"POST body could not be decoded as JSON: {exc}") from None
            raise InputError(400, "POST body is empty. Expecting a JSON dictionary.") from None
    if not isinstance(body, dict):
        raise InputError(400, "POST body should be a JSON dictionary.")
    inputs: dict[str, object] = {}
    for parameter in parameters:
        value = body.get(parameter.name, parameter.default)
        if value is inspect.Parameter.empty:
            raise InputError(400, f"A value is not provided for the {parameter.name!r} parameter.")
        inputs[parameter.name] = value
    return inputs


def raw_request(request: Request, path: str) -> object:
    """The request object a ``@rawhttp`` ``run`` receives: Flask's, built from a WSGI
    environ, when the environment holds the real azureml-inference-server-http (so Flask);
    else Kiln's ``AMLRequest``."""
    module = sys.modules[f"{API}.aml_request"]
    if not getattr(module, "__file__", "").startswith(SHIMS):
        flask = importlib.import_module("flask")
        return flask.Request(wsgi_environ(request, path))
    host = request.headers.get("host", "localhost")
    return module.AMLRequest(
        request.method, path, request.query, request.raw_headers, request.body, host=host
    )


def wsgi_environ(request: Request, path: str) -> dict[str, Any]:
    host, _, port = request.headers.get("host", "localhost").partition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": request.query,
        "SERVER_NAME": host,
        "SERVER_PORT": port or "80",
        "SERVER_PROTOCOL": request.version,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(request.body)),
    }
    for name, value in request.raw_headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_LENGTH":
            continue  # the body's real length is set above (it may have come chunked)
        if key != "CONTENT_TYPE":
            key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def raw_response(result: object) -> Response | None:
    """``run()``'s own answer (``AMLResponse``, Kiln's or Flask's, or any Flask/Werkzeug
    response) as a :class:`Response`; None for a plain value, which is sent as JSON."""
    status = getattr(result, "status_code", None)
    get_data = getattr(result, "get_data", None)
    headers = getattr(result, "headers", None)
    if not isinstance(status, int) or not callable(get_data) or headers is None:
        return None
    content_type: str | None = None
    pairs: list[tuple[str, str]] = []
    for name, value in list(headers):
        lower = name.lower()
        if lower == "content-type" and content_type is None:
            content_type = str(value)
        elif lower != "content-length":
            pairs.append((name, str(value)))
    body = get_data()
    return Response(
        status, body if isinstance(body, bytes) else str(body).encode(), content_type, pairs
    )
