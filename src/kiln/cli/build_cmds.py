"""``kiln env build|which|exec|activate|lock|logs``: using built environments."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_fields, emit_json

if TYPE_CHECKING:
    import argparse

    from kiln.builds import Built
    from kiln.catalog import EnvironmentRecord
    from kiln.fastexec import Warm
    from kiln.ready import Ready
    from kiln.registry.lockrow import LockRow
    from kiln.workspace import Workspace


def reference(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="NAME[:VERSION]")


def add_which(commands: Any) -> None:
    p = commands.add_parser(
        "which", help="print the interpreter of an environment (building it if needed)"
    )
    reference(p)
    add_json(p, "interpreter")
    p.set_defaults(handler=which, fast=which_fast)


def add_exec(commands: Any) -> None:
    import argparse  # here: a warm exec parsed by kiln.cli.main's plain form never needs it

    p = commands.add_parser(
        "exec", help="run a command in an environment: kiln env exec NAME -- CMD ARGS"
    )
    reference(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    p.set_defaults(handler=exec_, fast=exec_fast)


def add_build(commands: Any) -> None:
    p = commands.add_parser("build", help="build an environment (once; later uses are instant)")
    reference(p)
    p.add_argument("--refresh", action="store_true", help="re-resolve into a new lock generation")
    p.add_argument("--retry", action="store_true", help="retry now even if it failed moments ago")
    p.add_argument(
        "--refresh-base",
        action="store_true",
        help="of an image: rebuild onto the digest its base image's tag names now",
    )
    p.add_argument(
        "--host-only",
        action="store_true",
        help="of a definition with a docker section, build only its Python part on this machine "
        "(by default such a definition is built into an image)",
    )
    add_json(p, "build-result")
    p.set_defaults(handler=build, fast=build_fast)


def add_commands(commands: Any) -> None:
    add_build(commands)
    add_which(commands)
    add_exec(commands)

    p = commands.add_parser("activate", help='print shell code: eval "$(kiln env activate NAME)"')
    reference(p)
    p.set_defaults(handler=activate)

    p = commands.add_parser("lock", help="export the exact lock for plain pip or uv")
    reference(p)
    p.add_argument(
        "--format",
        choices=["requirements", "pylock", "conda"],
        default="requirements",
        help="requirements or pylock (pip and uv install them); conda: an @EXPLICIT file of the conda packages",
    )
    p.add_argument("--generation", type=int, help="an older lock generation")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    add_json(p, "lock")
    p.set_defaults(handler=lock)

    p = commands.add_parser("logs", help="show the log of the latest build")
    reference(p)
    add_json(p, "build-log")
    p.set_defaults(handler=logs)


def _record(ws: Workspace, text: str) -> EnvironmentRecord:
    from kiln import catalog

    name, version = catalog.parse_reference(text)
    return catalog.get(ws, name, version)


def ensure(
    args: argparse.Namespace,
    *,
    refresh: bool = False,
    retry: bool = False,
    host_only: bool = False,
    refresh_base: bool = False,
) -> Built:
    from kiln.builds import ensure_built
    from kiln.progress import Progress

    ws = workspace(args)
    record = _record(ws, args.reference)
    progress = Progress(f"building {record.reference}", plain=getattr(args, "json", False))
    try:
        return ensure_built(
            ws,
            record,
            refresh=refresh or refresh_base,
            retry=retry,
            reporter=progress,
            host_only=host_only,
            refresh_base=refresh_base,
        )
    finally:
        progress.done()


def _warm(args: argparse.Namespace) -> Warm | None:
    """The stdlib-only path for an environment already built on this machine (see fastexec)."""
    from kiln.fastexec import find_warm

    ws = existing_workspace(args)
    if not ws.is_embedded:
        return None
    return find_warm(ws.registry_file, ws.cache_root, args.reference)


def _pins(row: Any) -> list[str]:
    return [f"{p['name']}=={p['version']}" for p in row.packages]


def _image_facts(path: Path, built_now: bool) -> dict[str, Any] | None:
    """What an image build made: its reference, digest, action ("present" when it was made
    earlier, as ``kiln image build`` says) and remote name."""
    from kiln.builders.oci import imagefile

    if not (path / imagefile.FACTS).is_file():
        return None
    facts = imagefile.read_facts(path)
    found = {k: facts.get(k) for k in ("reference", "digest", "action", "remote")}
    return found if built_now else {**found, "action": "present"}


def _base_change(before: str, after: str) -> tuple[str, str] | None:
    """(old digest, new digest) when two image locks pin different base images."""
    from kiln.builders.base import BuildError
    from kiln.builders.oci.imagefile import pinned_base

    try:
        old, new = pinned_base(before)[1], pinned_base(after)[1]
    except BuildError:
        return None  # not image locks
    return (old, new) if old != new else None


def build(args: argparse.Namespace) -> int:
    from kiln.environment.diff import diff_lists

    built = ensure(
        args,
        refresh=args.refresh,
        retry=args.retry,
        host_only=args.host_only,
        refresh_base=args.refresh_base,
    )
    lock, record = built.lock, built.record
    summary = _summary(
        (record.name, record.version, record.build_hash),
        (built.builder, built.target.platform),
        lock,
        (built.path, built.interpreter, built.built_now, built.seconds),
    )
    image = _image_facts(built.path, built.built_now)
    if image is not None:
        summary["image"] = image
    changes, base = None, None
    if built.previous_lock is not None and built.previous_lock.generation != lock.generation:
        changes = diff_lists(
            _pins(built.previous_lock), _pins(lock), key=lambda t: t.split("==")[0]
        )
        lock_changes: dict[str, Any] = changes.as_dict()
        base = _base_change(built.previous_lock.lock_text, lock.lock_text)
        if base is not None:
            lock_changes["base_image"] = {"from": base[0], "to": base[1]}
        summary["lock_changes"] = lock_changes
    _report(args, summary)
    if args.json:
        return 0
    if changes is not None:
        print(f"lock generation {built.previous_lock.generation} -> {lock.generation}:")  # type: ignore[union-attr]
        for added in changes.added:
            print(f"  + {added}")
        for removed in changes.removed:
            print(f"  - {removed}")
        for old, new in changes.changed:
            print(f"  {old} -> {new}")
        if base is not None:
            print(f"  base image {base[0]} -> {base[1]}")
    elif args.refresh:
        print("--refresh resolved the same packages: the lock is unchanged")
    return 0


def _report(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """What a build made: its summary as JSON, or two lines."""
    if args.json:
        emit_json(summary)
        return
    verb = "Built" if summary["built"] else "Ready (cached)"
    print(
        f"{verb} {summary['name']}:{summary['version']} in {summary['seconds']:.2f} s: "
        f"{summary['packages']} packages, lock generation {summary['lock_generation']}\n"
        f"{summary['interpreter']}"
    )


def build_fast(args: argparse.Namespace) -> int | None:
    """A build of a plain pip definition with the standard library only (see kiln.fastbuild),
    or None for ``build``."""
    from kiln.errors import WorkspaceError

    if args.refresh or args.refresh_base:
        return None
    try:
        ws = existing_workspace(args)
    except WorkspaceError:  # the full path makes the per-user default workspace
        return None
    from kiln.fastbuild import build_planned
    from kiln.fastplan import plan_warm
    from kiln.progress import Progress

    plan = plan_warm(ws, args.reference, retry=args.retry)
    if plan is None:
        return None
    progress = Progress(f"building {plan.reference}", plain=args.json)
    try:
        built = build_planned(plan, ws, progress)
    finally:
        progress.done()
    version = plan.version
    summary = _summary(
        (version.name, version.version, version.build_hash),
        (built.builder, plan.target.platform),
        built.lock,
        (built.path, built.interpreter, built.built_now, built.seconds),
    )
    _report(args, summary)
    return 0


def _summary(
    version: tuple[str, str, str],
    builder: tuple[str, str],
    lock: LockRow,
    result: tuple[Path, Path, bool, float],
) -> dict[str, Any]:
    """The ``build-result`` fields: (name, version, build hash), (builder, platform), the lock,
    (path, interpreter, built now, seconds)."""
    path, interpreter, built, seconds = result
    return {
        **dict(zip(("name", "version", "build_hash"), version, strict=True)),
        **dict(zip(("builder", "platform"), builder, strict=True)),
        "lock_generation": lock.generation,
        "lock_digest": lock.lock_digest,
        "packages": len(lock.packages),
        "path": str(path),
        "interpreter": str(interpreter),
        "built": built,
        "seconds": round(seconds, 3),
    }


def which_fast(args: argparse.Namespace) -> int | None:
    warm = _warm(args)
    if warm is None:
        return None
    _print_interpreter(args, f"{warm.name}:{warm.version}", warm.interpreter, warm.path)
    return 0


def which(args: argparse.Namespace) -> int:
    built = ensure(args)
    _print_interpreter(args, built.record.reference, built.interpreter, built.path)
    return 0


def _print_interpreter(
    args: argparse.Namespace, reference: str, python: Path, prefix: Path
) -> None:
    if args.json:
        emit_json({"reference": reference, "python": str(python), "prefix": str(prefix)})
    else:
        print(python)


def _command(args: argparse.Namespace) -> list[str]:
    from kiln.errors import UsageError

    command: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("no command given; write kiln env exec NAME -- CMD ARGS")
    return command


def exec_fast(args: argparse.Namespace) -> int | None:
    """A warm environment, with the standard library only (see kiln.fastexec); None for the
    full path, which builds what is missing."""
    from kiln.errors import WorkspaceError
    from kiln.ready import held_if_warm

    command = _command(args)
    started_ns = time.time_ns()  # before anything is read: see execcard.remember
    try:
        ws = existing_workspace(args)
    except WorkspaceError:  # the full path makes the per-user default workspace
        return None
    ready = held_if_warm(ws, args.reference) if ws.is_embedded else None
    if ready is None:
        return None
    from kiln import execcard

    execcard.remember(
        args.workspace,
        args.reference,
        ready,
        workspace=ws.root,
        cache_root=ws.cache_root,
        cache_setting=ws.config.get("cache_dir"),
        started_ns=started_ns,
    )
    return _exec_in(ready, command, args.reference)


def exec_(args: argparse.Namespace) -> int:
    command = _command(args)
    from kiln.progress import Progress
    from kiln.ready import ready_and_held

    # The hold is taken for this pid, which exec keeps: GC leaves the environment alone.
    progress = Progress(f"building {args.reference}")
    try:
        ready = ready_and_held(workspace(args), reference=args.reference, reporter=progress)
    finally:
        progress.done()
    return _exec_in(ready, command, args.reference)


def _exec_in(ready: Ready, command: list[str], reference: str) -> int:
    """Replace this process with ``command`` in ``ready``'s environment (its hold, named by this
    pid, stays with it)."""
    from kiln.errors import InvalidRequest

    env = ready.process_environment(dict(os.environ))
    argv = ready.activation.command(command)  # an engine's run command first, if any
    sys.stdout.flush()
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        raise InvalidRequest(
            f"command {command[0]!r} not found in {reference} or on PATH"
        ) from None


def activate(args: argparse.Namespace) -> int:
    """POSIX shell code; ``${NAME}`` references in env vars stay references, for the shell to
    expand where the code runs (they may be secrets: never written out as values)."""
    built = ensure(args)
    # The activation prepends to PATH from the base given: a literal ${PATH} the shell expands.
    env = built.activation.environment({}, {"PATH": "${PATH}"})
    env.update(built.record.definition.environment_variables)
    unset = dict.fromkeys(("PYTHONHOME", *built.activation.unset))  # PYTHONHOME: as always
    lines = [f"export {key}={_shell_quoted(value)}" for key, value in env.items()]
    print("\n".join([*(f"unset {name}" for name in unset), *lines]))
    return 0


def _shell_quoted(value: str) -> str:
    """Double-quoted for a POSIX shell with everything literal except ``${NAME}`` references."""
    from kiln.secrets import REFERENCE

    def literal(text: str) -> str:
        for special in ("\\", '"', "$", "`"):
            text = text.replace(special, "\\" + special)
        return text

    parts, last = [], 0
    for match in REFERENCE.finditer(value):
        parts += [literal(value[last : match.start()]), match.group(0)]
        last = match.end()
    return '"' + "".join([*parts, literal(value[last:])]) + '"'


def lock(args: argparse.Namespace) -> int:
    from kiln.buildinfo import export_lock, lock_summary

    ws = existing_workspace(args)
    record = _record(ws, args.reference)
    text = export_lock(ws, record, fmt=args.format, generation=args.generation)
    if args.json:
        emit_json({**lock_summary(ws, record, generation=args.generation), "text": text})
    elif args.output:
        from kiln.formats.base import write_files_atomically

        out = Path(args.output)
        write_files_atomically(out.parent.absolute(), {out.name: text.encode()})
    else:
        sys.stdout.write(text)
    return 0


def logs(args: argparse.Namespace) -> int:
    from kiln.buildinfo import logged_build

    ws = existing_workspace(args)
    record = _record(ws, args.reference)
    attempt = logged_build(ws, record)
    assert attempt.log is not None
    if args.json:
        from kiln.utctime import utc_text

        emit_json(
            {
                "reference": record.reference,
                "build_hash": record.build_hash,
                "status": attempt.status,
                "machine": attempt.machine,
                "started_at": utc_text(attempt.started_at),
                "duration_ms": attempt.duration_ms,
                "log": attempt.log.read_text(encoding="utf-8"),
            }
        )
        return 0
    print(
        f"# {attempt.status} on {attempt.machine} at {attempt.started_at:%Y-%m-%d %H:%M:%S}, "
        f"{attempt.duration_ms} ms"
    )
    sys.stdout.write(attempt.log.read_text(encoding="utf-8"))
    return 0


def show_build(args: argparse.Namespace, record: EnvironmentRecord) -> dict[str, Any]:
    """The build behind a version on this machine, reported, never built (state "not built")."""
    from kiln.buildinfo import build_info

    return build_info(existing_workspace(args), record).as_dict()


def print_build(info: dict[str, Any]) -> None:
    emit_fields([(k.replace("_", " "), v) for k, v in info.items()])
