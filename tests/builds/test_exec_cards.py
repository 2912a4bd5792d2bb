"""The exec card lane (kiln.execcard): a settled warm ``kiln env exec NAME -- CMD`` starts the
command with ``os`` alone, exactly as the warm path would, and steps aside the moment anything
the card was read from changes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path
from unittest.mock import ANY

import pytest

from kiln import execcard
from kiln.fastexec import find_warm, pointer_path
from kiln.ready import held_if_warm
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register
from kilntesting.cli import imported_modules, run_kiln

# What the command reports: where it runs, a variable with a reference expanded at each start,
# and the holds of its own pid (exec keeps the pid) in the cache's refs folder.
_SHOW = (
    "import json, os, sys; refs = sys.argv[1]; "
    "print(json.dumps([sys.prefix, os.environ.get('GREETING'), "
    "[n for n in os.listdir(refs) if n.startswith(f'{os.getpid()}-')]]))"
)


Shown = tuple[str, "str | None", list[str]]  # sys.prefix, GREETING, this pid's holds


def _exec(env: dict[str, str], reference: str, refs: Path) -> tuple[Shown, bool]:
    """What the command printed, and whether the card lane ran it (the warm path's module,
    kiln.fastexec, never loaded)."""
    argv = ["env", "exec", reference, "--", "python", "-c", _SHOW, str(refs)]
    out, modules = imported_modules(argv, env)
    prefix, greeting, holds = json.loads(out)
    return (prefix, greeting, holds), "kiln.fastexec" not in modules


def _settle() -> None:
    """Wait until what the last write touched is older than a card accepts."""
    time.sleep(execcard.SETTLED_NS / 1e9 + 0.2)


def _cards(cache: Path) -> list[Path]:
    folder = cache / execcard.CARDS
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_settled_warm_exec_is_started_from_its_card_until_the_registry_changes(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    ws, cache = sqlite_workspace, Path(cli_env["KILN_CACHE_DIR"])
    package_index.publish("demo", "1.0")
    register(ws, {**definition("card", ["demo"], package_index.url),
                  "environment_variables": {"GREETING": "hi ${USER_PART}"}})  # fmt: skip
    run_kiln("env", "build", "card", env=cli_env)
    warm = find_warm(ws.registry_file, cache, "card")
    assert warm is not None
    refs = cache / "refs" / warm.key
    env = {**cli_env, "USER_PART": "there"}

    first, lane = _exec(env, "card", refs)  # the warm path (a card needs settled files)
    assert not lane
    assert first[:2] == (str(warm.path), "hi there") and len(first[2]) == 1

    _settle()  # the warm path runs it once more and writes the card
    shown, lane = _exec(env, "card", refs)
    assert not lane and shown[:2] == first[:2]
    (card,) = _cards(cache)
    assert stat.S_IMODE(card.stat().st_mode) == 0o600
    assert b"${USER_PART}" in card.read_bytes() and b"there" not in card.read_bytes()

    # From the card: the same process, the reference expanded from this start's environment,
    # the environment held for this pid as the warm path holds it.
    shown, lane = _exec(env, "card", refs)
    assert lane
    assert shown[:2] == first[:2] and len(shown[2]) == 1 and shown[2] != first[2]
    assert _exec({**env, "USER_PART": "you"}, "card", refs) == ((first[0], "hi you", ANY), True)

    # A command that is nowhere: the warm path's message, as without a card.
    missing = run_kiln("env", "exec", "card", "--", "no-such-command", env=env, check=False)
    assert missing.returncode == 2
    assert missing.stderr == "kiln: error: command 'no-such-command' not found in card or on PATH\n"

    # A second "--" is exec's handler's to read: the warm path runs it, the same way.
    argv = ["env", "exec", "card", "--", "--", "python", "-c", _SHOW, str(refs)]
    out, modules = imported_modules(argv, env)
    assert "kiln.fastexec" in modules and json.loads(out)[:2] == list(first[:2])

    # Another KILN_CACHE_DIR setting, though the same folder: another card.
    assert not _exec({**env, "KILN_CACHE_DIR": f"{cache}/"}, "card", refs)[1]

    # A damaged card: the warm path, which writes it again.
    card.write_bytes(b"key\x002\x00not\x00a card")
    shown, lane = _exec(env, "card", refs)
    assert not lane and shown[:2] == first[:2]
    assert _exec(env, "card", refs)[1]

    # A new version of the name: the registry changed, the card steps aside at once.
    register(ws, {**definition("card", ["demo"], package_index.url),
                  "environment_variables": {"GREETING": "hello"}})  # fmt: skip
    shown, lane = _exec(env, "card", refs)
    assert not lane and shown[1] == "hello"


def test_a_card_is_written_only_from_files_that_had_settled(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # As git's "racily clean" rule: a file changed within SETTLED_NS before the reading began
    # may have changed again in the same clock tick, after the reading, unseen.
    ws, cache = sqlite_workspace, Path(cli_env["KILN_CACHE_DIR"])
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    package_index.publish("demo", "1.0")
    register(ws, definition("racy", ["demo"], package_index.url))
    run_kiln("env", "build", "racy", env=cli_env)
    ready = held_if_warm(ws, "racy")
    assert ready is not None
    changed = [
        path.stat().st_ctime_ns
        for path in (
            ws.root / "workspace.json",
            ws.registry_file,
            pointer_path(cache, ready.build_hash),
        )
    ]
    wal = Path(f"{ws.registry_file}-wal")  # this process's connection keeps it: its mtime counts
    written = wal.exists() and wal.stat().st_size > 0  # an empty one holds nothing: not counted
    newest = max([*changed, wal.stat().st_mtime_ns if written else 0])

    def remember(started_ns: int) -> None:
        execcard.remember(None, "racy", ready, workspace=ws.root, cache_root=cache,
                          cache_setting=None, started_ns=started_ns)  # fmt: skip

    remember(newest + execcard.SETTLED_NS)  # the newest change is just too recent
    assert _cards(cache) == []
    monkeypatch.setenv("KILN_CACHE_DIR", os.path.relpath(cache))  # the current folder's
    remember(newest + execcard.SETTLED_NS + 1)
    assert _cards(cache) == []
    monkeypatch.setenv("KILN_CACHE_DIR", str(cache))
    remember(newest + execcard.SETTLED_NS + 1)
    assert len(_cards(cache)) == 1
    ready.release()


def test_a_card_steps_aside_for_a_collected_environment(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    ws, cache = sqlite_workspace, Path(cli_env["KILN_CACHE_DIR"])
    package_index.publish("demo", "1.0")
    register(ws, definition("gone", ["demo"], package_index.url))
    run_kiln("env", "build", "gone", env=cli_env)
    warm = find_warm(ws.registry_file, cache, "gone")
    assert warm is not None
    refs = cache / "refs" / warm.key
    _settle()
    _exec(cli_env, "gone", refs)  # the warm path writes the card
    assert _exec(cli_env, "gone", refs)[1]

    shutil.rmtree(warm.path)  # as garbage collection removes it
    shown, lane = _exec(cli_env, "gone", refs)
    assert not lane and shown[0] == str(warm.path)  # built again, where it was
    assert (warm.path / "pyvenv.cfg").is_file()


def test_the_lane_finds_the_workspace_discovery_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.create(tmp_path / "project")
    inner = ws.path / "src" / "deep"
    inner.mkdir(parents=True)
    monkeypatch.delenv("KILN_WORKSPACE", raising=False)
    monkeypatch.chdir(inner)
    assert execcard.workspace_root(None) == str(ws.root)  # upward from the current folder
    for given in (str(ws.path), str(ws.root), os.path.relpath(ws.path)):
        assert Path(execcard.workspace_root(given) or "").samefile(ws.root), given
    monkeypatch.setenv("KILN_WORKSPACE", str(ws.path))
    assert execcard.workspace_root(None) == str(ws.root)
    assert execcard.workspace_root("http://127.0.0.1:8765") is None  # a server: no card
    monkeypatch.delenv("KILN_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert execcard.workspace_root(None) is None  # the per-user default: refused under tests
