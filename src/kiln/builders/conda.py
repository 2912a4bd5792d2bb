"""The ``conda`` builder: conda packages solved and installed by py-rattler, pip packages by uv.

Chosen when ``python.conda.packages`` holds anything besides ``python`` and ``pip`` (see
``kiln.builders.choice.choose``). The decisions:

- **The interpreter comes from this machine**, as for the venv builder (``python.version``,
  found by uv, never downloaded): conda channels that ship Python are not reachable here, and a
  venv of the machine's Python already has conda's ``lib/pythonX.Y/site-packages`` layout. So
  ``python`` and ``pip`` specs are left out of the solve (``FROM_MACHINE``). The machine's
  Python is offered to the solver as a virtual package, beside the detected ``__glibc``,
  ``__linux``... ones, so packages that depend on ``python`` solve against the interpreter
  they will run with; as ``X.Y`` (that is ``X.Y.0``), not the patch release found, because
  locks are keyed by ``cpXY`` and shared by machines with other patch releases. To take Python
  from the channel later, drop ``python`` from ``FROM_MACHINE`` and the virtual package, and
  create the prefix with rattler instead of ``uv venv``. ``noarch: python`` packages need a
  conda Python record to be linked, so until then they are refused with a message.
- **Channels**, in priority order (strict, as conda does), for this machine's subdir
  (``Subdir.current()``, e.g. ``linux-64``) and ``noarch``. A name (``conda-forge``) stays a
  name; an absolute path or ``file://`` URL is a local channel; relative paths are refused,
  because a registered definition is used from anywhere. A URL's ``USER:${VAR}@`` credentials
  are sent as a header, never part of a URL rattler derives (``condachannels``).
- **The lock** (format ``kiln-conda.json``) is one JSON document:
  ``{"conda": [record, ...], "pip": PYLOCK_TEXT | null}``. Each record keeps what installs it
  exactly (name, version, build, build_number, subdir, noarch, depends, constrains, size,
  sha256, md5, fn, url, channel), sorted by name, so the same solve gives the same text; the
  indexer's timestamps are left out. ``pip`` is the venv builder's ``pylock.toml``, resolved by
  uv for the same interpreter, without regard to the conda packages.
- **A build** is ``uv venv`` + ``uv pip sync`` of the pip part (the venv builder's ``build``),
  then ``rattler.install`` of exactly the locked records (rebuilt from the lock, never
  re-solved) into the same prefix, checked afterwards against ``conda-meta/*.json``. Pip goes
  first because ``uv pip sync`` removes every distribution it did not install, which would
  include Python packages that came from conda. Downloads and extracted packages are kept in
  ``conda-pkgs`` beside uv's cache (repodata in ``conda-repodata``) and hard-linked into
  prefixes, so environments share files. Link scripts are never run.
- **Relocation**: the prefix is built in a temporary folder and renamed. Files with a conda
  prefix placeholder get the path they are built at, unless ``build`` is given ``final`` (then
  rattler writes that path instead); without it such packages are named in the build log.
- rattler's API is async; each step runs it with ``asyncio.run``, so these functions must not
  be called from a running event loop (call them in a worker thread there).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builders import interpreters, venv
from kiln.builders.base import Activation, BuildContext, BuildError, Lock, Target
from kiln.builders.condachannels import Channel, channels, client, refused
from kiln.builders.condasolve import solve, subdir
from kiln.environment.packages import parse_conda_entry
from kiln.lockexport import exporting, parse_lock_text

if TYPE_CHECKING:
    from rattler import RepoDataRecord

    from kiln.environment.definition import EnvironmentDefinition

name = "conda"
# What build makes stays on this machine: another machine installs the lock itself.
shared = False
LOCK_FORMAT = "kiln-conda.json"
LOCK_FILE = "kiln-lock.json"  # written into the prefix: what it was built from
FROM_MACHINE = frozenset({"python", "pip"})  # never solved: this machine's interpreter has them


def target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
    """This machine's interpreter for ``python.version``; the platform key is conda's subdir
    plus the interpreter tag (``linux-64-cp311``): both the conda and the pip part depend on it."""
    found = interpreters.find(
        definition.python.version,
        ctx.uv_cache,
        downloads=ctx.python_downloads,
        mirror=ctx.python_mirror,
    )
    tag = found.platform.rsplit("-", 1)[-1]
    return Target(found.interpreter, found.python_version, f"{subdir()}-{tag}")


def conda_specs(definition: EnvironmentDefinition) -> list[str]:
    """The match specs to solve, in order: all but ``python`` and ``pip``."""
    specs = [parse_conda_entry(p) for p in definition.python.conda.packages]
    return [s.text for s in specs if s.name not in FROM_MACHINE]


def channel_list(definition: EnvironmentDefinition, ctx: BuildContext) -> list[Channel]:
    """The channels as rattler reads them (see ``condachannels``), credentials from
    ``ctx.secrets``."""
    written = definition.python.conda.channels
    if not written:
        specs = ", ".join(conda_specs(definition))
        raise BuildError(
            f"`python.conda.channels` is empty; name the channel(s) that have {specs} "
            "(a name such as conda-forge, a URL, or the absolute path of a local channel)"
        )
    return channels(written, ctx.secrets)


def resolve(definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
    specs, found = conda_specs(definition), channel_list(definition, ctx)
    shown = ", ".join(c.source for c in found)  # credentials never reach the log
    ctx.log.write(f"rattler: solving {', '.join(specs)} from {shown}\n")
    conda = solve(specs, found, target, ctx)
    python_only = [f"{e['name']}-{e['version']}" for e in conda if e["noarch"] == "python"]
    if python_only:
        raise BuildError(
            f"{', '.join(python_only)}: noarch: python conda packages cannot be installed yet "
            "(Kiln uses this machine's Python, not a conda one); install them with python.pip"
        )
    pip = venv.resolve(definition, target, ctx) if definition.python.pip.packages else None
    text = json.dumps({"conda": conda, "pip": pip.text if pip else None}, indent=1) + "\n"
    packages = [{"name": e["name"], "version": e["version"]} for e in conda]
    resolver = f"py-rattler {metadata.version('py-rattler')}"
    return Lock(
        LOCK_FORMAT,
        text,
        packages + (pip.packages if pip else []),
        f"{resolver}; {pip.resolver}" if pip else resolver,
    )


def locked_record(entry: dict[str, Any]) -> RepoDataRecord:
    from rattler import BuildString, PackageRecord, RepoDataRecord

    def digest(key: str) -> bytes | None:
        return bytes.fromhex(entry[key]) if entry.get(key) else None

    package = PackageRecord(
        entry["name"],
        entry["version"],
        BuildString(entry["build"]),
        int(entry["build_number"]),
        entry["subdir"],
        noarch=entry.get("noarch"),
        depends=list(entry.get("depends") or []),
        constrains=list(entry.get("constrains") or []),
        sha256=digest("sha256"),
        md5=digest("md5"),
        size=entry.get("size"),
    )
    return RepoDataRecord(package, entry["fn"], entry["url"], entry["channel"] or "")


def _parse(lock: Lock, header: str = "the conda lock") -> dict[str, Any]:
    if lock.format != LOCK_FORMAT:
        raise BuildError(f"the conda builder cannot install a {lock.format} lock")
    data: dict[str, Any] = parse_lock_text(lock.format, lock.text, header=header)
    return data


def build(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """Install exactly ``lock`` into ``dest``, then health-check it. ``ctx.final``: where the
    folder will live after the rename, written into files that embed their prefix."""
    import asyncio  # here, not at the top: ``kiln.builders`` is imported on quick CLI paths

    final = ctx.final
    data = _parse(lock)
    pip_text = data.get("pip")
    pip = Lock(
        venv.LOCK_FORMAT,
        pip_text or venv.EMPTY_LOCK,
        venv.packages_of(pip_text) if pip_text else [],
    )
    venv.install(definition, pip, target, dest, ctx)  # the prefix, its interpreter, pip's part
    entries: list[dict[str, Any]] = data["conda"]
    ctx.log.write(f"rattler: installing {len(entries)} locked conda packages into {dest}\n")
    ctx.log.detail(f"installing {len(entries)} conda packages")
    asyncio.run(_install(entries, channel_list(definition, ctx), dest, ctx, final))
    problem = _compare(dest, entries)
    if problem is not None:
        raise BuildError(f"the conda packages installed are not the locked ones: {problem}")
    _note_placeholders(dest, ctx, final)
    (dest / LOCK_FILE).write_text(lock.text, encoding="utf-8")
    venv.verify_new(
        dest,
        ctx,
        lambda writing: _health(dest, definition, write_bytecode=writing),
        imports=bool(definition.python.check_imports),
    )


async def _install(
    entries: list[dict[str, Any]],
    found: list[Channel],
    dest: Path,
    ctx: BuildContext,
    final: Path | None,
) -> None:
    import rattler

    try:
        await rattler.install(
            [locked_record(e) for e in entries],
            dest,
            cache_dir=ctx.uv_cache.parent / "conda-pkgs",
            installed_packages=[],  # a fresh prefix: nothing to scan or remove
            execute_link_scripts=False,
            show_progress=False,
            alternative_target_prefix=final,
            client=client(found),
        )
    except Exception as exc:  # rattler's errors share no base class but Exception
        message = refused(str(exc), found) or f"installing the locked conda packages failed: {exc}"
        raise BuildError(message) from None


def _installed(dest: Path) -> dict[str, dict[str, Any]]:
    """``conda-meta/*.json`` of a prefix by file stem (``name-version-build``)."""
    found = {}
    for path in sorted((dest / "conda-meta").glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found[path.stem] = {}
    return found


def _stem(entry: dict[str, Any]) -> str:
    return f"{entry['name']}-{entry['version']}-{entry['build']}"


def _compare(dest: Path, entries: list[dict[str, Any]]) -> str | None:
    installed = _installed(dest)
    missing = [_stem(e) for e in entries if _stem(e) not in installed]
    extra = sorted(set(installed) - {_stem(e) for e in entries})
    changed = [
        _stem(e)
        for e in entries
        if _stem(e) in installed and installed[_stem(e)].get("sha256") != e["sha256"]
    ]
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("missing", missing), ("not locked", extra), ("other sha256", changed))
        if names
    ]
    return "; ".join(parts) or None


def _note_placeholders(dest: Path, ctx: BuildContext, final: Path | None) -> None:
    if final is not None:
        return
    embedding = [
        stem
        for stem, meta in _installed(dest).items()
        if any(p.get("prefix_placeholder") for p in meta.get("paths_data", {}).get("paths", []))
    ]
    if embedding:
        ctx.log.write(
            f"warning: {', '.join(embedding)} embed the build folder {dest} in their files; "
            "they will point there after the environment is moved into the cache\n"
        )


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    """The venv builder's check (interpreter, metadata, pip imports), then every locked conda
    package has its ``conda-meta`` record."""
    return _health(dest, definition, write_bytecode=False)


def _health(dest: Path, definition: EnvironmentDefinition, *, write_bytecode: bool) -> str | None:
    reason = venv.run_health_check(
        dest, definition.python.check_imports, write_bytecode=write_bytecode
    )
    if reason is not None:
        return reason
    try:
        locked = json.loads((dest / LOCK_FILE).read_text(encoding="utf-8"))["conda"]
    except (OSError, ValueError, KeyError) as exc:
        return f"{dest / LOCK_FILE} is missing or unreadable: {exc}"
    meta = dest / "conda-meta"
    missing = [_stem(e) for e in locked if not (meta / f"{_stem(e)}.json").is_file()]
    return f"conda packages missing from conda-meta: {', '.join(missing)}" if missing else None


def quick_check(dest: Path) -> str | None:
    return venv.quick_check(dest)


def interpreter(dest: Path) -> Path:
    return venv.interpreter(dest)


def activation(dest: Path) -> Activation:
    """The venv builder's, and ``CONDA_PREFIX`` (a conda build is a venv with conda packages
    in it)."""
    found = venv.activation(dest)
    return Activation(
        argv=found.argv,
        set_env={**found.set_env, "CONDA_PREFIX": str(dest)},
        path_prepend=found.path_prepend,
        unset=found.unset,
        requires=found.requires,
    )


def remove(dest: Path) -> None:
    """Nothing outside the prefix: ``conda-pkgs`` is shared and collected on its own."""


def tool_versions() -> dict[str, str]:
    return {**venv.tool_versions(), "py-rattler": metadata.version("py-rattler")}


def export_lock(lock: Lock, fmt: str, *, header: str) -> str:
    """``conda``: an ``@EXPLICIT`` file of the conda packages by URL and sha256 (conda,
    micromamba, pixi install it); ``requirements`` or ``pylock``: the pip part."""
    data = _parse(lock, header)
    with exporting(header):
        if fmt == "conda":
            lines = [f"# {header}", "@EXPLICIT"]
            lines += [f"{e['url']}#{e['sha256']}" for e in data["conda"]]
            return "\n".join(lines) + "\n"
        pip = data.get("pip") or venv.EMPTY_LOCK
        if not isinstance(pip, str):
            raise TypeError(f"its pip part is {type(pip).__name__}, not TOML text")
    note = f"{header}; the pip part only (export the conda part with --format conda)"
    return venv.export_lock(Lock(venv.LOCK_FORMAT, pip), fmt, header=note)
