"""JSON answers serialized once, for routes whose rows are already the public schema's shape.

Why: a route returning plain data has FastAPI validate it against the ``response_model`` again
(for a sync route, in one more worker thread) before serializing it, which for a page of 1,000
versions costs more than reading them. The routes keep declaring their ``response_model`` for
OpenAPI; the tests compare these bytes with what the model would have answered.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response


def json_answer(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``content`` as compact UTF-8 JSON, as FastAPI's own serializer writes it."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status_code, headers, media_type="application/json")
