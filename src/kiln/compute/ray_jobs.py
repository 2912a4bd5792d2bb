"""The client of a Ray cluster's job submission API that the Ray target (``ray``) uses.

Plain functions over an address; Ray is imported inside them, so importing this module is cheap.
Kiln users name a cluster ``ray://HOST:PORT`` where PORT is the dashboard's (job submission)
port, 8265 by default; ``HOST:PORT`` and ``http(s)://HOST:PORT`` are accepted too.

How a run reaches the workers (measured with Ray 2.60; the tests pin each point):

- **Packages**: the environment's lock goes into ``runtime_env["uv"]`` as requirement lines
  (hashes and index options included) installed with ``uv pip install --no-deps`` (plus
  ``--require-hashes`` when every line is hashed), so nothing is resolved again: the workers
  get exactly the locked versions even when the index offers newer ones. The ``uv`` plugin is
  used rather than ``pip`` because it works in 2.60 and installs faster; it needs ``uv`` in the
  cluster's Python (Ray runs ``python -m uv`` and pip-installs uv when it is missing). Ray builds
  one virtualenv per distinct lock per node (its URI is a digest of the uv field), cloned from the
  Python that runs Ray, and reuses it for later jobs with the same lock: only the first run of a
  lock on a node pays for the install. ``env_vars`` are a separate runtime_env key, so changing
  them never rebuilds.
- **Python**: workers use the cluster's interpreter (the one Ray runs on), never Kiln's. A lock
  resolved for another minor version installs only if all its wheels are pure Python; a compiled
  wheel for another interpreter makes uv refuse ("requirements are unsatisfiable"), and the job
  ends FAILED with error type ``RUNTIME_ENV_SETUP_FAILURE``, uv's message in ``message`` and no
  exit code (the entrypoint never ran). Compare the minor versions before submitting.
- **Entrypoint**: the runtime_env applies to the entrypoint command itself: Ray starts it from a
  shell with the virtualenv activated, the env vars set and the working directory as cwd, so
  ``python script.py`` runs with the locked packages.
- **Working dir and py_modules**: uploaded from this machine to the cluster (Ray caps each at
  500 MiB and honours ``.gitignore``) and unpacked on whichever node runs the job;
  ``py_modules`` are put on PYTHONPATH. Local wheels in the lock must be absolute paths that
  exist on every node (this machine for a local cluster, else a shared filesystem).
- **Exit code**: ``driver_exit_code`` in the job's details once the entrypoint ended (None for
  a job that was stopped or never started).
- **Logs**: ``follow_logs`` wraps the async websocket tail in a private event loop, so a plain
  thread can iterate it; it ends when the job does.
- **Credentials**: a dashboard behind a proxy that wants a password is named
  ``ray://USER:${VAR}@HOST:PORT``; the references are read from the environment on each call and
  sent as a Basic ``Authorization`` header (Ray's client passes its ``headers`` to every
  request, uploads and the log websocket included). Only the reference is ever stored or shown.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from kiln.errors import Conflict, InvalidRequest, KilnError, NotFound
from kiln.secrets import basic_authorization, credential_references, redact, url_with_reference

DEFAULT_DASHBOARD_PORT = 8265
STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED")
_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--no-index")
_T = TypeVar("_T")


class RayTargetError(KilnError):
    """The Ray cluster could not be reached or refused a request."""

    status = 503


class RayAddressError(InvalidRequest):
    """A Ray address Kiln cannot read."""


def runs_in_image(address: str) -> bool:
    """``ray://HOST:PORT?image=true``: the job runs in the environment's image (Ray's
    ``image_uri``), pulled by the cluster's nodes from the workspace's image registry."""
    _, _, query = address.strip().partition("?")
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"image"})
    if unknown:
        raise RayAddressError(
            _bad_address(address, f"unknown option {unknown[0]!r} (the options: image)")
        )
    chosen = options.get("image", ["false"])[-1].lower()
    if chosen not in ("true", "false", "1", "0", "yes", "no"):
        raise RayAddressError(_bad_address(address, "image= takes true or false"))
    return chosen in ("true", "1", "yes")


def dashboard_url(address: str) -> str:
    """``ray://HOST:PORT``, ``HOST:PORT`` or ``http(s)://HOST:PORT`` -> ``http(s)://HOST:PORT``
    (options after ``?`` are the target's, not the dashboard's)."""
    runs_in_image(address)  # the options are checked with the address
    text = address.strip().partition("?")[0]
    scheme, _, rest = text.rpartition("://")
    if scheme not in ("", "ray", "http", "https"):
        raise RayAddressError(_bad_address(address, f"unknown scheme {scheme!r}"))
    parts = urlsplit(f"//{rest}")
    if not parts.hostname or parts.path.strip("/") or parts.query or parts.fragment:
        raise RayAddressError(_bad_address(address, "expected HOST or HOST:PORT"))
    try:
        port = parts.port or DEFAULT_DASHBOARD_PORT
    except ValueError:
        raise RayAddressError(_bad_address(address, "the port is not a number")) from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{'https' if scheme == 'https' else 'http'}://{host}:{port}"


def _bad_address(address: str, why: str) -> str:
    return (
        f"compute target {address!r} is not a Ray address ({why}): use ray://HOST:PORT with "
        f"the dashboard port of the cluster's head node ({DEFAULT_DASHBOARD_PORT} by default)"
    )


def check_credentials_transport(address: str) -> None:
    """Credentials go to the dashboard over https only (plain http to this machine aside)."""
    from kiln.environment.urls import is_loopback

    url = dashboard_url(address)
    if (
        "@" in address
        and url.startswith("http://")
        and not is_loopback(urlsplit(url).hostname or "")
    ):
        raise RayAddressError(
            f"compute target {redact(address.strip())} would send its credentials unencrypted "
            f"(the dashboard at {url} is plain http); put the dashboard behind https and write "
            f"{url_with_reference('https://' + address.strip().rpartition('://')[2], 'RAY_PASSWORD')}"
        )


def auth_headers(address: str) -> dict[str, str]:
    """The ``Authorization`` header for an address with ``USER:${VAR}@`` credentials, read from
    the environment now; {} for an address without credentials."""
    check_credentials_transport(address)
    for name in credential_references(address):
        if name not in os.environ:
            raise RayAddressError(
                f"compute target {redact(address.strip())} uses ${{{name}}}, which is not set; "
                f"export {name}"
            )
    header = basic_authorization(address, os.environ)
    return {"Authorization": header} if header else {}


def _refused(address: str, url: str, status: str) -> str:
    """One line for a dashboard that answered 401 or 403, naming the variables, never values."""
    names = ", ".join(credential_references(address))
    written = address.strip() if "://" in address else f"ray://{address.strip()}"
    if names:
        return f"the Ray dashboard at {url} refused the credentials read from {names} ({status}); check their values"
    return (
        f"the Ray dashboard at {url} needs credentials ({status}); add the target as "
        f"{url_with_reference(written, 'RAY_PASSWORD')} and export RAY_PASSWORD"
    )


def _bounded(call: Callable[[], _T], timeout: float, what: str) -> _T:
    """``call()`` in a daemon thread, given up after ``timeout`` seconds (Ray's client sets no
    timeouts of its own, and a name lookup can outlast a socket timeout)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True, name=f"kiln-ray-{what}")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise RayTargetError(f"the Ray cluster did not answer within {timeout:g} s while {what}")
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Raise a clear error, within ``timeout`` seconds, unless a Ray dashboard answers."""
    url = dashboard_url(address)
    hint = (
        f"no Ray cluster answers at {url}: start one with `ray start --head` (its dashboard "
        f"takes jobs on port {DEFAULT_DASHBOARD_PORT}) or check the address (Kiln needs the "
        "dashboard port, not the Ray Client port 10001)"
    )

    request = urllib.request.Request(f"{url}/api/version", headers=auth_headers(address))

    def ask() -> dict[str, Any]:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            data: dict[str, Any] = json.load(answer)
            return data

    try:
        version = _bounded(ask, timeout, f"checking {url}")
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise RayTargetError(_refused(address, url, f"{error.code} {error.reason}")) from None
        raise RayTargetError(f"{hint} ({_reason(error)})") from None
    except (OSError, ValueError, RayTargetError) as error:
        raise RayTargetError(f"{hint} ({_reason(error)})") from None
    if "ray_version" not in version:
        raise RayTargetError(f"{url} answers, but not as a Ray dashboard: {hint}")


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return str(error) or type(error).__name__


def _client(address: str) -> Any:
    check_reachable(address)
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(dashboard_url(address), headers=auth_headers(address) or None)


def _call(address: str, submission_id: str, action: Callable[[Any], _T]) -> _T:
    """``action(client)``, with Ray's RuntimeErrors turned into Kiln's."""
    client = _client(address)
    try:
        return action(client)
    except RuntimeError as error:
        text = str(error)
        if "status code 404" in text or "does not exist" in text:
            raise NotFound(
                f"Ray job {submission_id!r} not found at {dashboard_url(address)}"
            ) from None
        raise RayTargetError(f"Ray refused the request for job {submission_id!r}: {text}") from None


def install_spec(requirements: list[str]) -> dict[str, Any] | None:
    """The ``uv`` runtime_env field for a lock's requirement lines (None for an empty lock)."""
    lines = _requirement_lines(requirements)
    packages = [line for line in lines if not line.startswith("-")]
    if not packages:
        return None
    options = ["--no-deps"]
    if all("--hash=" in line for line in packages):
        options.append("--require-hashes")
    return {"packages": lines, "uv_pip_install_options": options}


def _requirement_lines(requirements: list[str]) -> list[str]:
    """One requirement or option per line: continuations joined, comments dropped, local paths
    checked (they must be absolute: the cluster has no idea where Kiln's lock folder is)."""
    joined = re.sub(r"\\\s*\n\s*", " ", "\n".join(requirements))
    lines = []
    for raw in joined.splitlines():
        line = " ".join(re.sub(r"(^|\s)#.*$", "", raw).split())
        if not line:
            continue
        first = line.split()[0].split("=")[0]
        if line.startswith("-") and first not in _OPTIONS:
            raise InvalidRequest(
                f"requirement option {first!r} cannot go to a Ray cluster: pass the lock's lines "
                f"themselves (allowed options: {', '.join(_OPTIONS)})"
            )
        target = line.split()[-1] if first in ("--find-links", "-f") else line.split()[0]
        if target.startswith(("./", "../")) or (
            first in ("--find-links", "-f") and "://" not in target and not target.startswith("/")
        ):
            raise InvalidRequest(
                f"requirement {line!r} names a relative path; give an absolute path that exists "
                "on every node of the cluster"
            )
        lines.append(line)
    return lines


def runtime_env(
    *, working_dir: Path, py_modules: list[Path], env_vars: dict[str, str], requirements: list[str]
) -> dict[str, Any]:
    """The runtime_env of a Kiln run: its snapshot, Kiln's runtime package, env vars, lock."""
    env: dict[str, Any] = {"working_dir": str(working_dir)}
    if py_modules:  # an empty list fails in Ray 2.60's setup ("path_or_uri must be a string")
        env["py_modules"] = [str(path) for path in py_modules]
    if env_vars:
        env["env_vars"] = dict(env_vars)
    spec = install_spec(requirements)
    if spec is not None:
        env["uv"] = spec
    return env


def submit_job(
    address: str,
    *,
    submission_id: str,
    entrypoint: str,
    working_dir: Path,
    py_modules: list[Path],
    env_vars: dict[str, str],
    requirements: list[str],
    timeout: float = 30.0,
) -> str:
    """Submit ``entrypoint`` as job ``submission_id``; returns the id once the cluster has it
    (the upload of the working dir included), or raises within ``timeout`` seconds."""
    if not working_dir.is_dir():
        raise InvalidRequest(f"working_dir {str(working_dir)!r} is not a folder")
    env = runtime_env(
        working_dir=working_dir, py_modules=py_modules, env_vars=env_vars, requirements=requirements
    )
    return _submit(address, submission_id, entrypoint, env, timeout)


def submit_image_job(
    address: str,
    *,
    submission_id: str,
    entrypoint: str,
    image_uri: str,
    env_vars: dict[str, str],
    timeout: float = 30.0,
) -> str:
    """Submit ``entrypoint`` to run inside ``image_uri`` (which holds the code: Ray allows only
    env_vars beside an image)."""
    env: dict[str, Any] = {"image_uri": image_uri}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return _submit(address, submission_id, entrypoint, env, timeout)


def _submit(
    address: str, submission_id: str, entrypoint: str, env: dict[str, Any], timeout: float
) -> str:
    client = _client(address)

    def submit() -> str:
        job: str = client.submit_job(
            entrypoint=entrypoint, submission_id=submission_id, runtime_env=env
        )
        return job

    try:
        return _bounded(submit, timeout, f"submitting job {submission_id!r}")
    except RuntimeError as error:
        text = str(error)
        if "already exists" in text:
            raise Conflict(
                f"a Ray job with submission id {submission_id!r} already exists"
            ) from None
        raise RayTargetError(f"Ray refused job {submission_id!r}: {text}") from None
    except (ValueError, TypeError) as error:
        raise InvalidRequest(
            f"Ray refused the runtime_env of job {submission_id!r}: {error}"
        ) from None


def job_status(address: str, submission_id: str) -> str:
    """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    status = _call(address, submission_id, lambda c: c.get_job_status(submission_id))
    return str(status.value)


def job_details(address: str, submission_id: str) -> dict[str, Any]:
    """Status, message, error type, start and end (seconds since the epoch, or None), exit code
    of the entrypoint (None until it ends, and for a stopped job), entrypoint, node, and the
    runtime_env it was submitted with."""
    info = _call(address, submission_id, lambda c: c.get_job_info(submission_id))

    def seconds(millis: int | None) -> float | None:
        return millis / 1000 if millis else None

    return {
        "submission_id": submission_id,
        "status": str(info.status.value),
        "message": info.message,
        "error_type": info.error_type,
        "start_time": seconds(info.start_time),
        "end_time": seconds(info.end_time),
        "exit_code": info.driver_exit_code,
        "entrypoint": info.entrypoint,
        "driver_node_id": info.driver_node_id,
        "runtime_env": dict(info.runtime_env or {}),  # as the cluster recorded the submission
    }


def follow_logs(address: str, submission_id: str) -> Iterator[str]:
    """Log chunks as the job writes them, until it ends. A synchronous generator over Ray's
    async tail with an event loop of its own, so any plain thread can iterate it."""
    client = _client(address)
    loop = asyncio.new_event_loop()
    tail = client.tail_job_logs(submission_id)
    try:
        while True:
            try:
                chunk: str = loop.run_until_complete(tail.__anext__())
            except StopAsyncIteration:
                return
            except RuntimeError as error:
                raise RayTargetError(
                    f"lost the log stream of Ray job {submission_id!r}: {error}"
                ) from None
            yield chunk
    finally:
        try:
            loop.run_until_complete(tail.aclose())
        finally:
            loop.close()


def job_logs(address: str, submission_id: str) -> str:
    """Everything the job has written so far (stdout and stderr together)."""
    logs: str = _call(address, submission_id, lambda c: c.get_job_logs(submission_id))
    return logs


def stop_job(address: str, submission_id: str) -> None:
    """Ask Ray to stop the job: SIGTERM to the entrypoint's process group, SIGKILL after Ray's
    grace period (``RAY_JOB_STOP_WAIT_TIME_S``, 3 s by default). A job already ended is left as is."""
    _call(address, submission_id, lambda c: c.stop_job(submission_id))
