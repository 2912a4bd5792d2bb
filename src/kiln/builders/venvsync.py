"""``uv pip sync`` of a venv build's lock: offline when uv's cache is known to hold every
package, else through the index (see ``sync_lock``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kiln.builders.base import BuildContext, BuildError
from kiln.builders.uvprogress import UvFollower
from kiln.builders.uvtool import run_uv


def once(call: Callable[[], None]) -> Callable[[str], None]:
    """An ``on_line`` hook that calls ``call`` at the first line only."""
    called: list[bool] = []

    def hook(_line: str) -> None:
        if not called:
            called.append(True)
            call()

    return hook


def sync_lock(
    sync: list[str],
    ctx: BuildContext,
    work: Path,
    *,
    offline: bool,
    beside: Callable[[str], None] = lambda _line: None,
) -> None:
    """``uv pip sync``: offline when uv's cache is known to hold every package (the phase is
    "install" already), else through the index, moving the display from "download" to
    "install" when uv says it has prepared the packages. uv's messages become the display's
    details either way.

    Pins and hashes fix every file, so uv's cached index pages are as good as fresh ones here:
    when everything is cached, offline skips ~0.3 s of index requests. An offline run that
    fails anyway (uv pruned a file meanwhile) fails before installing anything; the online run
    that follows stays in "install" (a phase never comes back), its downloads shown as details.
    ``beside`` sees each line first."""
    if offline:
        follower = UvFollower(ctx.log)

        def offline_follow(line: str) -> None:
            beside(line)
            follower(line)

        try:
            what = "installing the locked packages from uv's cache"
            uv_in(ctx, [*sync, "--offline"], work, what, offline_follow)
            return
        except BuildError:
            ctx.log.write("(not everything is in uv's cache: downloading)\n")
            ctx.log.detail("downloading what uv's cache no longer holds")

    installing = offline
    follower = UvFollower(ctx.log)

    def follow(line: str) -> None:
        nonlocal installing
        beside(line)
        if line.startswith(("Prepared ", "Installed ")) and not installing:
            installing = True
            ctx.log.phase("install")
        follower(line)

    uv_in(ctx, sync, work, "installing the locked packages", follow)


def uv_in(
    ctx: BuildContext, args: list[str], work: Path, what: str, on_line: Callable[[str], None]
) -> None:
    """``run_uv`` in the folder ``work`` with the build's log, uv cache and secrets."""
    run_uv(
        args,
        log=ctx.log,
        cache_dir=ctx.uv_cache,
        secrets=ctx.secrets,
        cwd=work,
        what=what,
        on_line=on_line,
    )
