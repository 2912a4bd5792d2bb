"""Helpers for real builds: wheels made on the spot and a package index served over HTTP on
127.0.0.1 (the ``package_index`` fixture in kilntesting.fixtures serves one per test). Nothing
is mocked: uv resolves and installs from the index, virtualenvs are real, and the registry is a
real SQLite (or PostgreSQL) database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln import catalog
from kiln.catalog import EnvironmentRecord
from kiln.environment.validation import validate_definition
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from kiln.builds import Built

PYTHON_VERSION = "3.11"


# ---------------------------------------------------------------- wheels and the package index


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _record_line(path: str, content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(content)}"


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    requires: Sequence[str] = (),
    body: str = "",
    data: dict[str, bytes] | None = None,
) -> Path:
    """A minimal valid pure-python wheel at ``folder/simple/NAME/DIST-VERSION-py3-none-any.whl``.

    Its package ``name`` (``-`` -> ``_``) holds ``__version__`` and ``body``, and the files in
    ``data`` (paths relative to the package). Like wheels built by hatchling, flit or uv, it has
    no ``top_level.txt``."""
    dist = re.sub(r"[-_.]+", "_", name)
    package = dist.lower()
    info = f"{dist}-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            *(f"Requires-Dist: {r}" for r in requires),
            "",
        ]
    )
    files: dict[str, str | bytes] = {
        f"{package}/__init__.py": f'__version__ = "{version}"\n{body}\n',
        **{f"{package}/{path}": content for path, content in (data or {}).items()},
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(p, c if isinstance(c, bytes) else c.encode()) for p, c in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    target = folder / "simple" / normalize(name) / f"{dist}-{version}-py3-none-any.whl"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            # A fixed date: the same arguments make the same bytes, whatever the clock says.
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(entry, text, compress_type=zipfile.ZIP_DEFLATED)
    return target


@dataclass
class PackageIndex:
    """A PEP 503 index served by ``http.server`` (its directory listings are the pages)."""

    root: Path
    port: int = 0
    delay: float = 0.0  # seconds slept before answering each request (0 ends the sleeps)...
    delay_suffix: str = ""  # ...whose path ends with this (e.g. ".whl": downloads only)
    credentials: tuple[str, str] | None = None  # HTTP basic auth required when set
    # Project pages whose links carry each file's sha256, as PyPI's do (so uv need not fetch a
    # file to hash it); otherwise http.server's plain directory listings.
    hashed_pages: bool = False
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    def publish(
        self,
        name: str,
        version: str,
        requires: Sequence[str] = (),
        body: str = "",
        data: dict[str, bytes] | None = None,
    ) -> Path:
        return make_wheel(self.root, name, version, requires, body, data)


def _handler(index: PackageIndex) -> type[SimpleHTTPRequestHandler]:
    expected: dict[str, str | None] = {"header": None}

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(index.root), **kwargs)

        def do_GET(self) -> None:
            index.requests.append(self.path)
            if index.delay and self.path.endswith(index.delay_suffix):
                # Held for ``delay`` seconds, or until a test sets it back to 0: a test can keep
                # a build waiting on the index for as long as a loaded machine needs.
                until = time.monotonic() + index.delay
                while index.delay and time.monotonic() < until:
                    time.sleep(0.02)
            if index.credentials is not None:
                user, password = index.credentials
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                expected["header"] = f"Basic {token}"
                if self.headers.get("Authorization") != expected["header"]:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="kiln-tests"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            if index.hashed_pages and self._send_hashed_page():
                return
            super().do_GET()

        def _send_hashed_page(self) -> bool:
            """A project page with ``#sha256=`` links; False for anything but a project."""
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            folder = index.root.joinpath(*parts)
            if len(parts) != 2 or parts[0] != "simple" or not folder.is_dir():
                return False
            links = "".join(
                f'<a href="{f.name}#sha256={hashlib.sha256(f.read_bytes()).hexdigest()}">'
                f"{f.name}</a>\n"
                for f in sorted(folder.iterdir())
            )
            body = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def served_index(root: Path) -> Iterator[PackageIndex]:
    """An empty index in ``root``, served on 127.0.0.1 until the ``with`` block ends."""
    index = PackageIndex(root)
    (index.root / "simple").mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    server.daemon_threads = True
    index.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------- environments


def definition(
    name: str,
    packages: Sequence[str],
    index_url: str | None,
    *,
    version: str = PYTHON_VERSION,
    **python: Any,
) -> dict[str, Any]:
    pip: dict[str, Any] = {"packages": list(packages)}
    if index_url is not None:
        pip["index_url"] = index_url
    return {"name": name, "python": {"version": version, "pip": pip, **python}}


def register(workspace: Workspace, data: dict[str, Any]) -> EnvironmentRecord:
    return catalog.register(workspace, validate_definition(data)).record


def built_demo(workspace: Workspace, index: PackageIndex) -> tuple[EnvironmentRecord, Built]:
    """``demo`` 1.0 published, registered as ``demo`` and built."""
    from kiln.builds import ensure_built

    index.publish("demo", "1.0")
    record = register(workspace, definition("demo", ["demo"], index.url))
    return record, ensure_built(workspace, record)


def installed_versions(python: Path) -> dict[str, str]:
    """{normalized name: version} of what ``python`` has installed."""
    code = (
        "import json; from importlib import metadata; "
        "print(json.dumps({d.metadata['Name']: d.version for d in metadata.distributions()}))"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {normalize(k): v for k, v in json.loads(out).items()}


def every_byte_under(folder: Path, *, skip: Sequence[Path] = ()) -> bytes:
    chunks = []
    for base, dirs, files in os.walk(folder):
        if any(Path(base) == s or s in Path(base).parents for s in skip):
            dirs[:] = []
            continue
        for name in files:
            path = Path(base) / name
            if not path.is_symlink():
                chunks.append(path.read_bytes())
    return b"".join(chunks)


def one_line_without(error: BaseException, *secrets: str) -> str:
    """The error's text, checked to be one line that holds none of ``secrets``."""
    text = str(error)
    assert "\n" not in text, text
    assert not [s for s in secrets if s in text], text
    return text


class Recorder:
    """A build reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.messages: list[str] = []
        self.details: list[str] = []

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def detail(self, text: str) -> None:
        self.details.append(text)

    def message(self, text: str) -> None:
        self.messages.append(text)


def wait_for_bytecode(cache_root: Path, *, limit: float = 300.0) -> None:
    """Wait until no background bytecode job compiles a build of ``cache_root``."""
    from kiln.builders.bytecodejob import running

    deadline = time.monotonic() + limit
    while running(cache_root / "envs"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"a bytecode job under {cache_root} still runs after {limit} s")
        time.sleep(0.05)


def build_rows(workspace: Workspace, build_hash: str) -> list[dict[str, Any]]:
    """Every recorded build attempt of ``build_hash``, oldest first."""
    from sqlalchemy import select

    from kiln.registry.schema import builds

    query = select(builds).where(builds.c.build_hash == build_hash).order_by(builds.c.id)
    with workspace.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def lock_generations(workspace: Workspace, build_hash: str) -> list[int]:
    from kiln.registry.lock_queries import list_locks

    with workspace.engine.connect() as connection:
        return [row.generation for row in list_locks(connection, build_hash=build_hash)]


def says_waiting(cache: Path) -> bool:
    """A build using the Kiln cache ``cache`` has written to its log (kept there while it
    runs) that it waits for another builder's lease."""
    logs = (cache / "tmp").glob("log.*.log")
    return any("==> waiting for" in log.read_text(encoding="utf-8") for log in logs)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Poll ``condition`` until it holds; an AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
