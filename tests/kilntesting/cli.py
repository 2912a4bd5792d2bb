"""Run the real CLI as a user would, check its ``--json`` against the published schemas, and
other helpers any test may use (test files import from here, never from a conftest, because
every conftest.py is imported under the same module name)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from kiln.errors import InvalidDefinition

REPO = Path(__file__).resolve().parents[2]  # tests/kilntesting/cli.py -> the repository
KILN = [sys.executable, "-m", "kiln"]
# What the standard-library fast paths must not import (asyncio: 60 ms, see kiln.filelocks).
HEAVY = ("sqlalchemy", "pydantic", "alembic", "yaml", "asyncio")
# ``python -c IMPORT_PROBE ARGS``: the CLI with ARGS, then, as the last line on stderr, JSON
# with its exit code and the HEAVY packages it imported.
IMPORT_PROBE = (
    "import json, sys\n"
    "from kiln.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
    "sys.stderr.write('\\n' + json.dumps({'code': code, 'heavy': heavy}) + '\\n')\n"
)


def run_kiln(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    inherit: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would. ``env`` adds to this process's
    environment, or replaces it with ``inherit=False``."""
    full_env = {**os.environ, **(env or {})} if inherit else dict(env or {})
    result = subprocess.run(
        [*KILN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kiln {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    if "--json" in args and result.stdout.strip():
        check_published_schema(args, result.stdout)
    return result


def imported_modules(argv: Sequence[str], env: dict[str, str]) -> tuple[str, set[str]]:
    """What ``kiln ARGV`` prints, and every module it imported (``-X importtime`` reports them
    on stderr as they load, so this sees them even when exec replaces the process)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kiln", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    return result.stdout, set(lines)


OTHER_HOST = "kiln-elsewhere"


def run_kiln_on_another_host(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``kiln ARGS`` in a UTS namespace whose host name (``OTHER_HOST``) is not this machine's:
    to Kiln it is another machine, whose signals cannot reach this one's processes."""
    for unshare in (["unshare", "--uts"], ["unshare", "--user", "--map-root-user", "--uts"]):
        probe = subprocess.run([*unshare, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            break
    else:
        raise AssertionError(f"no UTS namespace on this machine: {probe.stderr!r}")
    command = f'hostname {OTHER_HOST} && exec "$@"'
    return subprocess.run(
        [*unshare, "sh", "-c", command, "sh", *KILN, *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def json_schema_of(args: Sequence[str]) -> str:
    """The public schema a ``kiln ... --json`` command line declares it prints."""
    from kiln.cli.main import build_parser

    namespace, _ = build_parser().parse_known_args(list(args))
    schema: str | None = getattr(namespace, "json_schema", None)
    assert schema, f"`kiln {' '.join(args)}` takes --json but declares no public schema"
    return schema


def check_published_schema(args: Sequence[str], stdout: str) -> None:
    """Every ``--json`` output a test sees must fit its published schema (schema/public/)."""
    import json

    from jsonschema import Draft202012Validator

    name = json_schema_of(args)
    document = json.loads((REPO / "schema" / "public" / f"{name}.schema.json").read_text())
    errors = sorted(Draft202012Validator(document).iter_errors(json.loads(stdout)), key=str)
    assert not errors, (
        f"`kiln {' '.join(args)} --json` does not fit schema/public/{name}.schema.json: "
        + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    )


def error_of(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """The one-line message of the InvalidDefinition that ``call`` raises."""
    with pytest.raises(InvalidDefinition) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def run_or_fail(command: list[str]) -> str:
    """Run a command; on failure, fail the test with the command, exit code and last lines."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        shown = " ".join(c if len(c) < 80 else c[:60] + "..." for c in command)
        pytest.fail(f"{shown} exited with {result.returncode}:\n{tail}", pytrace=False)
    return result.stdout


def cached_venv(requirement: str, probe: str) -> Path:
    """The interpreter of a throwaway venv holding ``requirement`` (e.g. the real azureml-core),
    built once with uv and reused across runs and xdist workers; ``probe`` is an import that
    must work. Lives in ``$KILN_TEST_CACHE`` (default: the temp folder's kiln-test-cache)."""
    import tempfile

    from kiln.builders.uvtool import uv_binary
    from kiln.filelocks import held

    cache = Path(
        os.environ.get("KILN_TEST_CACHE") or Path(tempfile.gettempdir()) / "kiln-test-cache"
    )
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = cache / f"{requirement.replace('==', '-')}-{tag}"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = venv / ".kiln-ready"  # written last: a venv without it is half-built
    if marker.is_file() and python.is_file():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with held(Path(str(venv) + ".lock")):
        # Check again: another worker may have built it while this one waited for the lock.
        if not (marker.is_file() and python.is_file()):
            import shutil

            shutil.rmtree(venv, ignore_errors=True)
            run_or_fail([uv_binary(), "venv", "--quiet", "--python", sys.executable, str(venv)])
            run_or_fail(
                [uv_binary(), "pip", "install", "--quiet", "--python", str(python), requirement]
            )
            run_or_fail([str(python), "-c", f"import {probe}"])
            marker.write_text(requirement)
    return python
