"""The checks of a virtualenv (used by the venv and conda builders): the health check right
after a build and before ``kiln cache verify``, and the cheap check before every reuse.

The health check proves the environment is whole without importing the user's code: the
interpreter starts, every installed distribution's metadata reads, the files each locked
distribution's RECORD names are present, the installed set is the lock's, and (for a venv,
which holds nothing but the lock) ``uv pip check`` finds the dependencies consistent. uv
checked every archive's hash when it installed it, so file contents are not hashed again.
Importing a distribution's top-level names proves nothing (they are not a list of importable
modules: pyarrow ships ``__dummy__``), so modules are imported only when the definition names
them in ``python.check_imports``.

The check reads each ``.dist-info`` folder with nothing but ``os`` and ``csv``: importing
``importlib.metadata`` (email, zipfile, pathlib) cost more than reading every file it finds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builders import bytecode
from kiln.builders.base import BuildContext, BuildError
from kiln.builders.uvtool import uv_binary, uv_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from kiln.builders.earlycheck import EarlyCheck
    from kiln.environment.definition import EnvironmentDefinition

LOCK_FILE = "kiln-lock.toml"  # the pylock.toml an environment was built from, kept inside it
RESULT = "kiln-health:"  # the result's line: imported modules may print to stdout too
SHOWN_PROBLEMS = 5

HEALTH_SCRIPT = r"""
import csv, json, os, re, sys
checked, modules = set(json.loads(sys.argv[1])), json.loads(sys.argv[2])
problems, installed = [], {}
def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
def headers(text):
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, colon, value = line.partition(":")
        if colon and not key[:1].isspace():
            found.setdefault(key.strip().lower(), value.strip())
    return found
def missing_files(where, folder):
    if where.endswith(".dist-info"):
        listing, base = read(os.path.join(where, "RECORD")), folder
        paths = None if listing is None else [r[0] for r in csv.reader(listing.splitlines()) if r]
    else:
        listing, base = read(os.path.join(where, "installed-files.txt")), where
        paths = None if listing is None else [x for x in listing.splitlines() if x.strip()]
    if paths is None:
        return None
    return [p for p in paths if "__pycache__" not in p.split("/") and not listed(base, p)]
listings = {}
def listed(base, path):
    # One listing per folder rather than one lstat per file (thousands in numpy and scipy):
    # a name in its folder's listing is what os.path.lexists finds.
    folder, _, name = path.rpartition("/")
    where = os.path.join(base, folder) if folder else base
    if where not in listings:
        try:
            listings[where] = set(os.listdir(where))
        except OSError:
            listings[where] = set()
    return name in listings[where]
for folder in sys.path:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        continue
    for item in names:
        if not item.endswith((".dist-info", ".egg-info")):
            continue
        where = os.path.join(folder, item)
        try:
            text = read(where if os.path.isfile(where) else os.path.join(
                where, "METADATA" if item.endswith(".dist-info") else "PKG-INFO"))
            if text is None:
                raise FileNotFoundError("no METADATA")
            meta = headers(text)
        except Exception as exc:
            problems.append(f"unreadable metadata in {where}: {exc}")
            continue
        name, version = meta.get("name"), meta.get("version")
        if not name or not version:
            problems.append(f"metadata without a name or version in {where}")
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        installed.setdefault(key, []).append(version)
        if key not in checked:
            continue
        try:
            missing = None if os.path.isfile(where) else missing_files(where, folder)
        except Exception as exc:
            problems.append(f"{name} {version}: unreadable RECORD: {exc}")
            continue
        if missing is None:
            problems.append(f"{name} {version} has no RECORD")
        elif missing:
            problems.append(f"{name} {version} lacks {len(missing)} of its files: {', '.join(missing[:3])}")
if modules:
    import importlib
for module in modules:
    try:
        importlib.import_module(module)
    except BaseException as exc:
        problems.append(f"import {module} failed: {type(exc).__name__}: {exc}")
sys.stdout.flush()
print("\n" + RESULT + json.dumps({"installed": installed, "problems": problems}))
""".replace("RESULT", repr(RESULT))


def interpreter(dest: Path) -> Path:
    return dest / "bin" / "python"


def verify_new(
    dest: Path, ctx: BuildContext, check: Callable[[bool], str | None], *, imports: bool
) -> None:
    """The health check of a new build (``check(write_bytecode)``). Without imports to check
    (``imports``: ``python.check_imports`` names modules) nothing compiles, so bytecode is left
    wholly to the job that starts once the environment is ready (kiln.builders.bytecodejob: it
    links what the shared store has, compiles the rest, shares it), off the build's critical
    path. With imports, what earlier builds compiled is linked in first, so they run fast, and
    the bytecode they wrote is shared for the next build."""
    ctx.log.phase("verify")
    store = ctx.bytecode_store if imports else None
    if store is not None:
        bytecode.link_known(dest, store)
    reason = check(store is not None)
    if reason is not None:
        raise BuildError(f"the new environment failed its health check: {reason}")
    if store is not None:
        bytecode.share_written(dest, store)


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    """A venv's check (see the module's docstring), leaving the folder as it is."""
    return run_health_check(dest, definition.python.check_imports, write_bytecode=False, exact=True)


def run_health_check(
    dest: Path,
    check_imports: list[str],
    *,
    write_bytecode: bool,
    exact: bool = False,
    pip_check: bool = True,
    timeout: float = 300,
    early: EarlyCheck | None = None,
    uv_cache: Path | None = None,
) -> str | None:
    """None when ``dest`` is healthy, else why not. ``exact``: the environment holds the lock
    and nothing else (a venv; a conda prefix also holds conda's Python packages), so anything
    more is a problem and ``uv pip check`` applies. ``write_bytecode``: the imports of
    ``python.check_imports`` may leave ``.pyc`` files (in a new build, to be shared).
    ``pip_check=False``: the lock's consistency is known already (the installed set is still
    compared with the lock, so it is the set that was checked). ``check_imports``: the
    definition's ``python.check_imports``. ``early``: the check's interpreter, started while
    the packages were installed (kiln.builders.earlycheck), used when it can be. ``uv_cache``:
    the cache the install used, which holds uv's facts about this interpreter (asking them
    again is ~60 ms of ``uv pip check``'s ~70); without it the check uses no cache."""
    python = interpreter(dest)
    if not python.exists():
        return f"{python} is missing"
    locked = locked_versions(dest)
    if locked is None:
        return f"{dest / LOCK_FILE} is missing or unreadable"
    consistency = _start_pip_check(python, uv_cache) if exact and locked and pip_check else None
    flags = ["-I"] if write_bytecode else ["-I", "-B"]
    arguments = [json.dumps(sorted(locked)), json.dumps(check_imports)]
    result = early.result(timeout) if early is not None and not check_imports else None
    try:
        result = result or subprocess.run(
            [str(python), *flags, "-c", HEALTH_SCRIPT, *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _stop(consistency)
        return f"the interpreter does not start: {exc}"
    found = _result(result)
    if isinstance(found, str):
        _stop(consistency)
        return found
    installed, problems = found
    problems += compare_with_lock(installed, locked, exact=exact)
    if consistency is not None:
        problems += _pip_check_problems(consistency, timeout)
    return "; ".join(problems[:SHOWN_PROBLEMS]) if problems else None


def _result(
    result: subprocess.CompletedProcess[str],
) -> tuple[dict[str, list[str]], list[str]] | str:
    """(installed versions by name, problems) from the check's output, or why it failed."""
    line = next((x for x in reversed(result.stdout.splitlines()) if x.startswith(RESULT)), None)
    if line is None:
        detail = result.stderr.strip()[-300:] or f"no result line in {result.stdout[-300:]!r}"
        return f"the interpreter exited with {result.returncode}: {detail}"
    data = json.loads(line.removeprefix(RESULT))
    return data["installed"], list(data["problems"])


def locked_versions(dest: Path) -> dict[str, str | None] | None:
    """{PEP 503 name: version} of the lock the folder was built from (None for a package
    with a marker, which may rightly be absent); None when the file is unreadable."""
    try:
        data = tomllib.loads((dest / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {
        canonical(str(p["name"])): None if p.get("marker") else str(p.get("version", ""))
        for p in data.get("packages", [])
    }


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def compare_with_lock(
    installed: dict[str, list[str]], locked: dict[str, str | None], *, exact: bool
) -> list[str]:
    """How the installed distributions differ from the lock."""
    problems = []
    for name, version in sorted(locked.items()):
        have = installed.get(name, [])
        if not have and version is not None:
            problems.append(f"{name} {version} is locked but not installed")
        elif version and have != [version]:
            problems.append(f"{name} is installed as {', '.join(have)}, locked {version}")
    extra = sorted(set(installed) - set(locked))
    if exact and extra:
        problems.append(f"installed but not locked: {', '.join(extra)}")
    return problems


def _start_pip_check(python: Path, uv_cache: Path | None) -> subprocess.Popen[str]:
    """``uv pip check``, run beside the interpreter's check."""
    cache = [] if uv_cache is not None else ["--no-cache"]
    return subprocess.Popen(
        [uv_binary(), "pip", "check", *cache, "--python", str(python)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=uv_environment(uv_cache or python.parent),  # --no-cache: no folder is used
    )


def _pip_check_problems(process: subprocess.Popen[str], timeout: float) -> list[str]:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        return ["`uv pip check` did not finish"]
    if process.returncode == 0:
        return []
    lines = [x.strip() for x in output.splitlines() if x.strip().startswith(("The package", "-"))]
    return [f"`uv pip check`: {' '.join(lines) or output.strip()[-300:]}"]


def _stop(process: subprocess.Popen[str] | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.communicate()


def quick_check(dest: Path) -> str | None:
    """Cheap enough for every reuse (no process started): the interpreter, ``pyvenv.cfg`` and
    the base Python folder it points at still exist."""
    python = interpreter(dest)
    if not python.exists():  # follows the symlink: the base interpreter must exist too
        return f"{python} or the interpreter it links to is missing"
    if not (dest / "pyvenv.cfg").is_file():
        return f"{dest / 'pyvenv.cfg'} is missing, so bin/python would run without the packages"
    home = home_of(dest)
    if home is not None and not home.is_dir():
        return f"its base Python folder {home} (pyvenv.cfg home) is missing"
    return None


def home_of(dest: Path) -> Path | None:
    """The base Python folder ``pyvenv.cfg`` names (``home = ...``), if it can be read."""
    try:
        config = (dest / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip())
    return None
