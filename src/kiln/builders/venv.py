"""The ``venv`` builder: a virtualenv made and filled by uv.

Resolution is ``uv pip compile --format pylock.toml`` for the target interpreter (PEP 751: every
package, transitive ones included, with its exact version, source URL and hashes). A build is
``uv venv --relocatable`` (started while the resolver runs, when there is one) plus ``uv pip
sync --require-hashes`` of exactly that lock (as hashed requirements, through the index, so
uv's cache is reused; offline when uv's cache is known to hold every package, so such a build
makes no index requests), so a rebuild on any machine installs the same files, and the folder
can be built in a temporary place and renamed into the cache. Files are shared between
environments through uv's cache (hard links).
Definitions whose conda packages are only ``python`` and ``pip`` (the usual Azure ML case) take
this path too: the Python version comes from ``python.version``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builders import interpreters, uvheld, venvcreate
from kiln.builders.base import Activation, BuildContext, BuildError, Lock, Target
from kiln.builders.earlycheck import EarlyCheck
from kiln.builders.plainpins import all_plain
from kiln.builders.uvindex import IndexOptions, index_args
from kiln.builders.uvprogress import UvFollower
from kiln.builders.uvtool import redact, uv_version
from kiln.builders.venvcheck import LOCK_FILE, home_of, locked_versions
from kiln.builders.venvcheck import health_check as health_check
from kiln.builders.venvcheck import interpreter as interpreter
from kiln.builders.venvcheck import quick_check as quick_check
from kiln.builders.venvcheck import run_health_check as run_health_check
from kiln.builders.venvcheck import verify_new as verify_new
from kiln.builders.venvsync import once, sync_lock, uv_in
from kiln.lockexport import export_pip_lock, to_requirements

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

name = "venv"
# What build makes stays on this machine: another machine installs the lock itself.
shared = False
LOCK_FORMAT = "pylock.toml"
EMPTY_LOCK = 'lock-version = "1.0"\ncreated-by = "kiln"\n'
LOCAL_KINDS = ("path", "wheel")  # pip entries installed from a staged file


def target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
    return interpreters.find(
        definition.python.version,
        ctx.uv_cache,
        downloads=ctx.python_downloads,
        mirror=ctx.python_mirror,
    )


def _requirement_lines(packages: list[str], ctx: BuildContext) -> list[str]:
    """The pip entries for uv, local files replaced by their staged copy relative to
    ``ctx.wheel_root`` (uv resolves a relative path against its working folder)."""
    if all_plain(packages):
        return list(packages)  # bare names and plain pins name no file: packaging not needed
    from kiln.environment.packages import parse_pip_entry  # packaging: only when resolving

    lines = []
    for entry in packages:
        parsed = parse_pip_entry(entry)
        if parsed.kind not in LOCAL_KINDS:
            lines.append(entry)
        elif entry in ctx.local_wheels:
            lines.append(
                f"./{ctx.local_wheels[entry]}" + "".join(f" --hash={h}" for h in parsed.hashes)
            )
        else:
            raise BuildError(
                f"`python.pip.packages`: {entry} has not been staged from the workspace; "
                "register the definition again from the folder that holds it"
            )
    return lines


@contextmanager
def _uv_files(ctx: BuildContext, inside: Path | None = None) -> Iterator[tuple[Path, str]]:
    """A folder for uv's input and output files and a tag ("" or ".<hex>") for their names.

    With local wheels it is ``ctx.wheel_root`` itself: uv writes a local archive into
    pylock.toml by the path it was given, relative to the lock file's folder when that path is
    relative (an absolute one stays absolute), and ``pip sync`` reads it relative to the lock
    file again. So the lock says ``path = "<sha256>/<file>"`` and installs on any machine. The
    tag keeps concurrent builds sharing that folder apart; the files are removed afterwards.
    Otherwise it is a new temporary folder (inside ``inside`` when given) and no tag is needed.
    """
    if ctx.local_wheels and ctx.wheel_root is not None:
        tag = f".{os.urandom(16).hex()}"
        ctx.wheel_root.mkdir(parents=True, exist_ok=True)
        try:
            yield ctx.wheel_root, tag
        finally:
            for leftover in ctx.wheel_root.glob(f"*{tag}.*"):
                leftover.unlink(missing_ok=True)
        return
    with tempfile.TemporaryDirectory(prefix="kiln-uv-", dir=inside) as folder:
        yield Path(folder), ""


def resolve(definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
    pip = definition.python.pip
    return resolve_pip(pip.packages, pip.constraints, pip, target, ctx)


def resolve_pip(
    packages: list[str],
    constraints: list[str],
    index: IndexOptions,
    target: Target,
    ctx: BuildContext,
    *,
    offline: bool = False,
) -> Lock:
    """``resolve`` given only what it reads of the definition: ``python.pip``'s packages,
    constraints and index options (kiln.fastbuild has no model). ``offline`` resolves from
    the index pages in uv's cache alone (a guess of what the index says now: see
    kiln.fastresolve); it fails when the cache lacks a page, and leaves the venv prepared."""
    if not packages:
        return Lock(LOCK_FORMAT, EMPTY_LOCK, [], uv_version())
    lines = _requirement_lines(packages, ctx)
    venvcreate.prepare(target, ctx)  # a build usually follows: its venv is made meanwhile
    with _uv_files(ctx) as (work, tag):
        requirements, output = f"requirements{tag}.in", f"pylock{tag}.toml"
        (work / requirements).write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = [
            "pip",
            "compile",
            requirements,
            "--format",
            LOCK_FORMAT,
            "-o",
            output,  # uv accepts pylock.toml or pylock.<name>.toml only
            "--no-header",
            "--python",
            str(target.interpreter),
            # For the minor version (the platform key), not this interpreter's patch release:
            # otherwise the lock says requires-python >=3.11.7 and a machine with 3.11.2 sharing
            # the workspace cannot install it.
            "--python-version",
            minor_version(target),
            *index_args(index, ctx.secrets),
        ]
        if constraints:
            listed = f"constraints{tag}.txt"
            (work / listed).write_text("\n".join(constraints) + "\n", encoding="utf-8")
            args += ["-c", listed]
        try:
            uv_in(
                ctx,
                [*args, *(["--offline"] if offline else [])],
                work,
                "resolving packages",
                UvFollower(ctx.log),
            )
        except BuildError:
            if not offline:
                venvcreate.discard(target, ctx)  # no build follows a failed resolution
            raise
        text = (work / output).read_text(encoding="utf-8")
    text = redact(text, ctx.secrets)  # a secret the lock might echo goes back to ${NAME}
    return Lock(LOCK_FORMAT, text, packages_of(text), uv_version())


def minor_version(target: Target) -> str:
    return ".".join(target.python_version.split(".")[:2])


def packages_of(lock_text: str) -> list[dict[str, str]]:
    data = tomllib.loads(lock_text)
    return [
        {"name": p["name"], "version": str(p.get("version", ""))} for p in data.get("packages", [])
    ]


def build(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """``install``, then the health check (``ctx.final`` is not needed: a relocatable venv
    embeds no path)."""
    python = definition.python
    build_locked(lock, target, dest, ctx, index=python.pip, check_imports=python.check_imports)


def build_locked(
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
    *,
    index: IndexOptions,
    check_imports: list[str],
) -> None:
    """``build`` given only what it reads of the definition: the index options and
    ``python.check_imports``. Without imports to check, the check's interpreter starts while
    uv installs (kiln.builders.earlycheck)."""
    early = EarlyCheck()

    def start_check() -> None:
        locked = locked_versions(dest)
        if not check_imports and locked:
            early.start(dest, list(locked))

    try:
        install_locked(lock, target, dest, ctx, index, beside_sync=start_check)
        if ctx.lock_checked:
            ctx.log.write(
                "(`uv pip check` passed on an earlier build of this lock: not run again)\n"
            )
        verify_new(
            dest,
            ctx,
            lambda writing: run_health_check(
                dest,
                check_imports,
                write_bytecode=writing,
                exact=True,
                pip_check=not ctx.lock_checked,
                early=early,
                uv_cache=ctx.uv_cache,
            ),
            imports=bool(check_imports),
        )
    finally:
        early.stop()


def install(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """A relocatable venv of ``target``'s interpreter with exactly ``lock`` installed."""
    install_locked(lock, target, dest, ctx, definition.python.pip)


def install_locked(
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
    index: IndexOptions,
    *,
    beside_sync: Callable[[], None] = lambda: None,
) -> None:
    """``install`` given only the index options of the definition; ``beside_sync`` is called
    once, when uv's sync says its first line (the venv and its lock file exist by then)."""
    requirements = to_requirements(LOCK_FORMAT, lock.text, header="kiln: the locked packages")
    packages = uvheld.entries(requirements)
    offline = uvheld.all_held(ctx.uv_cache, packages)
    ctx.log.phase("install" if offline else "download")
    venvcreate.create(target, dest, ctx)
    (dest / LOCK_FILE).write_text(lock.text, encoding="utf-8")  # what it was built from
    if not lock.packages:
        return
    # Installed through the index as hashed requirements, not from pylock.toml's file URLs: uv
    # then reuses its cache (a mirror whose file responses carry no caching headers makes every
    # direct-URL fetch a new download) and still installs exactly the locked files, hashes
    # checked. The copy (it may hold expanded credentials) sits beside any staged local wheels,
    # whose lock paths are relative to that folder, readable by this user only.
    with _uv_files(ctx, inside=dest) as (work, tag):
        copy = work / f"requirements{tag}.txt"
        handle = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(requirements)
        sync = [
            "pip",
            "sync",
            copy.name,
            "--require-hashes",
            "--python",
            str(interpreter(dest)),
            *index_args(index, ctx.secrets),
        ]
        sync_lock(sync, ctx, work, offline=offline, beside=once(beside_sync))
    uvheld.remember(ctx.uv_cache, packages)


def activation(dest: Path) -> Activation:
    """``bin`` first on PATH, ``VIRTUAL_ENV`` set and ``PYTHONHOME`` unset, as ``activate``
    does; a warm reuse needs what ``quick_check`` checks."""
    home = home_of(dest)
    required = [interpreter(dest), dest / "pyvenv.cfg", *([home] if home else [])]
    return Activation(
        set_env={"VIRTUAL_ENV": str(dest)},
        path_prepend=(str(dest / "bin"),),
        unset=("PYTHONHOME",),
        requires=tuple(str(path) for path in required),
    )


def remove(dest: Path) -> None:
    """Nothing outside the folder: uv's cache is shared and collected on its own."""


def tool_versions() -> dict[str, str]:
    return {"uv": uv_version()}


def export_lock(lock: Lock, fmt: str, *, header: str) -> str:
    """``requirements`` or ``pylock`` (the stored pylock.toml as it is)."""
    return export_pip_lock(lock.format, lock.text, fmt, header=header)
