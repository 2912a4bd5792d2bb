"""A test request to a deployment, sent from the machine that serves it (its scoring URI is on
that machine's loopback address): the web UI's form and ``POST /api/v1/deployments/NAME/test``.

Sending one is a write: it runs the deployment's own code, which may do anything its author
wrote, so it needs a contributor or an admin, and it is audited (``deployment.test``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, NamedTuple

from kiln.errors import Conflict, InvalidRequest, KilnError

if TYPE_CHECKING:
    from email.message import Message

    from kiln.accounts import Actor
    from kiln.workspace import Workspace

MAX_BODY = 1024 * 1024  # bytes sent
MAX_SHOWN = 64 * 1024  # bytes of the answer kept
TIMEOUT = 30.0


class Unreachable(KilnError):
    """The deployment's service did not answer (stopped, crashed, or still starting)."""

    status = 502


class ScoringAnswer(NamedTuple):
    """The deployment's answer as it came: the status code and the start of the body."""

    status: int
    content_type: str
    body: str
    cut: bool  # the body was longer than MAX_SHOWN

    def summary(self) -> dict[str, object]:
        """The public ``deployment-test`` document."""
        return self._asdict()


def check_body(body: str) -> bytes:
    """A JSON document of at most MAX_BODY bytes, as the scoring route reads it."""
    data = body.encode("utf-8")
    if len(data) > MAX_BODY:
        raise InvalidRequest(f"`body`: {len(data)} bytes is too long; send at most {MAX_BODY}")
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"`body`: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); send a "
            'JSON document such as {"data": [[1, 2, 3]]}'
        ) from None
    return data


def send_test_request(
    workspace: Workspace, actor: Actor | None, name: str, body: str, *, timeout: float = TIMEOUT
) -> ScoringAnswer:
    """POST ``body`` to the deployment's scoring URI and return its answer, whatever the status
    (a 4xx or 5xx of the service is an answer to show, not an error)."""
    from kiln.accounts import record_request, require_writer
    from kiln.serving import deployments

    if actor is not None:
        require_writer(actor)
    data = check_body(body)
    record = deployments.get(workspace, name)
    uri = record.scoring_uri
    if uri is None:
        raise Conflict(
            f"deployment {name} has no scoring URI yet (it is {record.state}); wait until it is "
            "Healthy"
        )
    record_request(workspace, actor, "deployment.test", name)
    request = urllib.request.Request(
        uri, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _answer(response.status, response.headers, response.read(MAX_SHOWN + 1))
    except urllib.error.HTTPError as exc:
        return _answer(exc.code, exc.headers, exc.read(MAX_SHOWN + 1))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(
            f"deployment {name} did not answer at {uri} ({reason}); see its state and log"
        ) from None


def _answer(status: int, headers: Message, raw: bytes) -> ScoringAnswer:
    text = raw[:MAX_SHOWN].decode("utf-8", errors="replace")
    return ScoringAnswer(status, headers.get("Content-Type", ""), text, len(raw) > MAX_SHOWN)
