"""The scoring application: the routes and answers of azmlinfsrv 1.5.1 (``GET /``, ``GET|POST
/score``, ``GET /swagger.json``), its error bodies, and its request-id headers; ``run()`` called
as the script asks (body as text, ``@input_schema`` values, ``@rawhttp`` request object).

Differences from azmlinfsrv, on purpose: every response carries the request-id headers (also
404/405), a body over the limit is refused with 413, ``--show-errors`` puts the exception's
message in the 500 body, and an undecorated ``run()`` gets the body whatever its content type
(Flask hands ``run`` an empty string for form content types).

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qsl, unquote

from kiln.serving.runtime_inputs import (
    InputError,
    raw_request,
    raw_response,
    schema_inputs,
    text_input,
)
from kiln.serving.runtime_protocol import Request, Response
from kiln.serving.runtime_swagger import SwaggerError, swagger_document
from kiln.serving.scoring_script import ScoringScript

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
NOT_ALLOWED = "The method is not allowed for the requested URL."
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL = "An unexpected internal error occurred. Check the logs for more info."
HTML = "text/html; charset=utf-8"
_ALLOWED = "GET, OPTIONS, HEAD"  # the Allow header of OPTIONS / and /swagger.json


# Request headers whose values the response echoes, and what may never be echoed in them.
_ECHOED = ("x-request-id", "x-ms-client-request-id", "x-ms-request-id", "traceid")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def message_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


def failed(flag: bool) -> tuple[str, str]:
    return ("x-ms-run-function-failed", "True" if flag else "False")


def normalize_path(raw: str) -> str:
    """Percent-decoded, repeated slashes merged (``//score`` is ``/score``, as in Werkzeug)."""
    path = unquote(raw) if "%" in raw else raw
    while "//" in path:
        path = path.replace("//", "/")
    return path


def werkzeug_headers(raw: list[tuple[str, str]]) -> dict[str, str]:
    """The headers as azmlinfsrv passes them to ``run(request_headers=...)``: Werkzeug's
    capitalisation (``X-Request-Id``), repeated headers joined by commas."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.replace("_", "-").title()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


class ScoringApp:
    """Answers requests for one imported ``score.py``; ``run()`` calls are serialized."""

    def __init__(self, script: ScoringScript, *, app_root: str, show_errors: bool = False) -> None:
        from kiln import __version__

        self.script = script
        self.app_root = app_root
        self.show_errors = show_errors
        self.server_version = f"kiln/{__version__}"
        self.run_lock = threading.Lock()

    def request_ids(self, headers: dict[str, str]) -> list[tuple[str, str]] | Response:
        """The response's id headers (azmlinfsrv's rules), or a 431 for an over-long id and a 400
        for one holding a control character."""
        request_id = headers.get("x-request-id")
        client_id = headers.get("x-ms-client-request-id")
        legacy_id = headers.get("x-ms-request-id")
        version = ("x-ms-server-version", self.server_version)
        for name in _ECHOED:
            if _CONTROL.search(headers.get(name) or ""):
                # Echoed into response headers: a bare CR or a NUL there could split them.
                body = message_body(f"{name} must not hold control characters")
                return Response(400, body, headers=[failed(False), version])
        if request_id and len(request_id) > 100:
            body = message_body("x-request-id must not exceed 100 characters")
            return Response(431, body, headers=[failed(False), version])
        request_id = request_id or str(uuid.uuid4())
        if (client_id and len(client_id) > 100) or (legacy_id and len(legacy_id) > 100):
            message = "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"
            ids = [failed(False), version, ("x-request-id", request_id)]
            return Response(431, message_body(message), headers=ids)
        ids = [
            version,
            ("x-request-id", request_id),
            ("x-ms-request-id", legacy_id or client_id or request_id),
        ]
        if client_id or legacy_id:
            ids.append(("x-ms-client-request-id", client_id or legacy_id or ""))
        if trace_id := headers.get("traceid"):
            ids.append(("TraceId", trace_id))
        return ids

    def reject(self, headers: dict[str, str], status: int, message: str) -> Response:
        ids = self.request_ids(headers)
        extra = ids if isinstance(ids, list) else []
        return Response(status, message_body(message), headers=[failed(False), *extra], close=True)

    def handle(self, request: Request) -> Response:
        ids = self.request_ids(request.headers)
        if isinstance(ids, Response):
            return ids
        response = self.route(request, normalize_path(request.path))
        return response._replace(headers=[*response.headers, *ids])

    def route(self, request: Request, path: str) -> Response:
        method = request.method
        if path == "/score":
            if method in ("GET", "POST", "OPTIONS") or (
                method == "HEAD" and self.script.mode == "raw"
            ):
                return self.score(request, path)  # a @rawhttp run() answers HEAD too
            if method == "HEAD":  # azmlinfsrv's own answer, not the router's
                return Response(405, message_body("Method not allowed"), headers=[failed(False)])
        elif path == "/":
            if method in ("GET", "HEAD"):
                return Response(200, b"Healthy", HTML)
        elif path == "/swagger.json":
            if method in ("GET", "HEAD"):
                return self.swagger(request.query)
        else:
            return Response(404, message_body(NOT_FOUND), headers=[failed(False)])
        if method == "OPTIONS":
            return Response(200, b"", HTML, headers=[("Allow", _ALLOWED)])
        return Response(405, message_body(NOT_ALLOWED), headers=[failed(False)])

    def swagger(self, query: str) -> Response:
        version = dict(parse_qsl(query)).get("version", "2")
        script = self.script
        try:
            document = swagger_document(
                version, self.app_root, script.schemas, script.swagger_versions
            )
        except SwaggerError as exc:
            return Response(404, message_body(str(exc)), headers=[failed(False)])
        return Response(200, document, headers=[failed(False)])

    def run_inputs(self, request: Request, path: str) -> dict[str, object] | Response:
        """``run()``'s arguments, or the answer when there is no ``run()`` to call."""
        script = self.script
        if script.mode == "raw":
            return {script.input_name: raw_request(request, path)}
        if request.method == "OPTIONS":
            return Response(200, b"", HTML, headers=[failed(False)])
        try:
            if script.mode == "schema":
                return schema_inputs(request, script.inputs)
            return {script.input_name: text_input(request)}
        except InputError as exc:
            return Response(exc.status, message_body(exc.message), headers=[failed(False)])

    def score(self, request: Request, path: str) -> Response:
        inputs = self.run_inputs(request, path)
        if isinstance(inputs, Response):
            return inputs
        headers = werkzeug_headers(request.raw_headers) if self.script.wants_headers else {}
        with self.run_lock:
            started = time.perf_counter()
            try:
                result = self.script.call(inputs, headers)
            except (Exception, SystemExit) as exc:  # sys.exit() in run() must not end a thread
                return self.run_failed(exc)
            elapsed_ms = (time.perf_counter() - started) * 1e3
        exec_ms = ("x-ms-run-fn-exec-ms", f"{elapsed_ms:.3f}")
        own = raw_response(result)
        if own is not None:  # run() answered with a response of its own (AMLResponse)
            if own.status >= 500:
                kept = [(k, v) for k, v in own.headers if k.lower() != "x-ms-run-function-failed"]
                own = own._replace(headers=[*kept, failed(True)])
            return own._replace(headers=[*own.headers, exec_ms])
        try:
            body = json.dumps({} if result is None else result).encode()
        except Exception:
            print("run() returned a value that cannot be sent as JSON:", file=sys.stderr)
            traceback.print_exc()
            return Response(500, message_body(INTERNAL), headers=[failed(False)])
        return Response(200, body, headers=[failed(False), exec_ms])

    def run_failed(self, exc: BaseException) -> Response:
        print("run() raised an exception:", file=sys.stderr)
        traceback.print_exc()
        message = (str(exc) or type(exc).__name__) if self.show_errors else RUN_FAILED
        return Response(500, message_body(message), headers=[failed(True)])
