"""The empty virtualenv a venv build starts from, made while the resolver runs.

A first build resolves, then creates its venv, then installs: the venv does not depend on the
resolution, so ``prepare`` (called when resolving starts) runs ``uv venv`` beside it, and
``create`` moves the result into the build's folder. A relocatable venv names no path of its
own, so it can be made anywhere and renamed. Without a prepared one, ``create`` makes it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
from pathlib import Path

from kiln.builders.base import BuildContext, BuildError, Target
from kiln.builders.uvtool import StartedUv, finish_uv, run_uv, start_uv

# Empty venvs started while resolving, by (interpreter, uv cache): install() takes them.
_prepared: dict[tuple[str, str], tuple[StartedUv, Path]] = {}
# Two resolutions may prepare at once (kiln.fastresolve): one venv is started for both.
_preparing = threading.Lock()


def prepare(target: Target, ctx: BuildContext) -> None:
    """Start ``uv venv`` into the cache's tmp folder (named as a build's staging folder, so
    ``kiln cache gc`` removes it if this process dies); one not taken goes at exit."""
    tmp = ctx.uv_cache.parent / "tmp"
    key = (str(target.interpreter), str(ctx.uv_cache))
    with _preparing:
        if key in _prepared or not tmp.is_dir():
            return
        folder = tmp / f"venv.{os.getpid()}.{os.urandom(4).hex()}"
        started = start_uv(
            _venv_args(target, folder),
            cache_dir=ctx.uv_cache,
            secrets=ctx.secrets,
            what="creating the virtualenv",
        )
        _prepared[key] = (started, folder)


def _venv_args(target: Target, dest: Path) -> list[str]:
    return ["venv", "--relocatable", "--python", str(target.interpreter), "--no-project", str(dest)]


def discard(target: Target, ctx: BuildContext) -> None:
    """Remove the venv prepared for ``target`` (its resolution failed: no build follows)."""
    prepared = _prepared.pop((str(target.interpreter), str(ctx.uv_cache)), None)
    if prepared is not None:
        _remove(*prepared)


def _remove(started: StartedUv, folder: Path) -> None:
    started.process.communicate()
    shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def _discard_prepared() -> None:
    while _prepared:
        _remove(*_prepared.popitem()[1])


def create(target: Target, dest: Path, ctx: BuildContext) -> None:
    """An empty relocatable venv at the empty folder ``dest``: the one started while
    resolving, moved into place (relocatable: it names no path of its own), or a new one."""
    prepared = _prepared.pop((str(target.interpreter), str(ctx.uv_cache)), None)
    if prepared is not None:
        started, folder = prepared
        try:
            finish_uv(started, ctx.log)
            os.replace(folder, dest)  # dest is an empty folder: rename(2) replaces it
            return
        except (BuildError, OSError) as exc:
            ctx.log.write(f"(the virtualenv made while resolving is unusable: {exc})\n")
            shutil.rmtree(folder, ignore_errors=True)
    run_uv(
        _venv_args(target, dest),
        log=ctx.log,
        cache_dir=ctx.uv_cache,
        secrets=ctx.secrets,
        what="creating the virtualenv",
    )
