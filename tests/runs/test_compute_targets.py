"""Compute targets stay behind their Protocol: one registry, addresses read by their kinds, and
no kind named anywhere else in Kiln's code."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
from pathlib import Path

import pytest

import kiln
from kiln.compute import DEFAULT_TARGET
from kiln.compute.base import Ended, Execution, Job, RunControl, RunRef
from kiln.compute.registry import (
    TARGETS,
    check_target_name,
    checked_address,
    kind_of,
    named_target_kind,
    target_of,
)
from kiln.compute.runfolder import RunOutput, with_kiln_importable
from kiln.errors import InvalidRequest
from kiln.runs import core
from kiln.workspace import Workspace
from kilntesting.runs import write_script

SRC = Path(kiln.__file__).parent
COMPUTE = SRC / "compute"
HELP_KEYWORDS = {"help", "description", "metavar"}  # the CLI's help text may name kinds
# Old import paths kept until bench/ imports the new ones (see kiln.compute.ray_jobs/ray_local).
MOVED: set[Path] = set()  # old module paths kept as shims while callers move (none now)
# Literals that spell a kind's name but mean something else (module, line text).
OTHER_MEANINGS = {("serving/deployments.py", "container")}  # a kind of deployment


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _literals(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is neither a docstring nor CLI help text."""
    skipped = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in HELP_KEYWORDS:
            skipped |= {id(n) for n in ast.walk(node.value)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def _names_a_kind(text: str) -> bool:
    schemes = [f"{t.scheme}://" for t in TARGETS.values() if t.scheme]
    return text.strip() in TARGETS or any(scheme in text for scheme in schemes)


def test_no_kind_of_target_is_named_outside_compute() -> None:
    offending = []
    for path in _modules(SRC):
        if path.is_relative_to(COMPUTE):
            continue
        for line, text in _literals(ast.parse(path.read_text(), str(path))):
            if _names_a_kind(text) and (str(path.relative_to(SRC)), text) not in OTHER_MEANINGS:
                offending.append(f"{path.relative_to(SRC)}:{line}: {text!r}")
    assert offending == []


def test_the_check_finds_a_kind_named_in_code() -> None:
    code = 'TARGET = "local"\nURL = f"ray://{host}"\nadd(help="local or ray://HOST:PORT")\n'
    found = [text for _, text in _literals(ast.parse(code)) if _names_a_kind(text)]
    assert found == ["local", "ray://"]


def test_only_the_registry_imports_a_kind_and_no_kind_imports_another() -> None:
    kinds = {f"kiln.compute.{kind}" for kind in TARGETS}
    for path in _modules(SRC):
        if path in MOVED or path == COMPUTE / "registry.py":
            continue
        own = f"kiln.compute.{path.stem.split('_')[0]}" if path.parent == COMPUTE else None
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported = _imported(node)
            for name in imported & kinds:
                assert name == own, f"{path.relative_to(SRC)} imports {name}"


def test_compute_targets_sit_below_runs_and_the_faces() -> None:
    """Runs' core calls targets, never the other way round: no package cycle."""
    above = ("kiln.runs", "kiln.cli", "kiln.serving")
    for path in _modules(COMPUTE):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            assert not [n for n in _imported(node) if n.startswith(above)], path.name


def _imported(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module:
        helpers = {f"{node.module}.{alias.name}" for alias in node.names}
        return {node.module, *helpers}
    return set()


def test_addresses_are_read_by_their_kinds() -> None:
    assert kind_of(DEFAULT_TARGET) == "local"
    assert kind_of("ray://10.0.0.1:8265") == "ray"
    assert kind_of("gpu") is None  # a name, maybe of a registered target
    assert kind_of("ray") is None  # a kind with a scheme is never its own address
    assert kind_of("http://10.0.0.1:8265") is None
    assert target_of("ray://10.0.0.1:8265") is TARGETS["ray"]
    assert checked_address("  ray://10.0.0.1:8265 ") == "ray://10.0.0.1:8265"
    assert checked_address("gpu") is None
    with pytest.raises(InvalidRequest, match="not a Ray address"):
        checked_address("ray://no port:x")
    with pytest.raises(InvalidRequest, match="is no target's address; use 'local', 'ray://"):
        target_of("somewhere")


def test_named_targets_take_addresses_of_kinds_with_a_scheme() -> None:
    assert named_target_kind("ray://10.0.0.1:8265") == "ray"
    for address in (DEFAULT_TARGET, "10.0.0.1:8265"):
        with pytest.raises(InvalidRequest, match="must look like ray://HOST:PORT"):
            named_target_kind(address)
    for name in (DEFAULT_TARGET, "ray://x"):
        with pytest.raises(InvalidRequest, match="is reserved"):
            check_target_name(name)
    check_target_name("ray")  # not an address: a fine name for a Ray cluster


def test_the_run_commands_use_the_core_not_the_sdk_or_the_store() -> None:
    for module in ("run_cmds.py", "target_cmds.py"):
        tree = ast.parse((SRC / "cli" / module).read_text())
        imported = set().union(*(_imported(node) for node in ast.walk(tree)))
        assert not {n for n in imported if n.startswith("kiln.sdk") or n.endswith("RunStore")}
        assert "kiln.runs.core" in imported


class _Niced:
    """A kind of target written only against ``kiln.compute.base`` (as the container target
    is): the script as a local process under ``nice -n LEVEL``. Registered for one test,
    it needs no change anywhere in Kiln."""

    scheme: str | None = "nice"
    address_form: str = "nice://LEVEL"
    bare_address: bool = False

    def in_image(self, address: str) -> bool:
        return False

    def check_address(self, address: str) -> None:
        if not address.removeprefix("nice://").isdigit():
            raise InvalidRequest(f"`compute_target`: {address!r} must look like nice://LEVEL")

    def prepare(self, job: Job, output: RunOutput) -> None:
        output.line(f"niceness {job.address.removeprefix('nice://')}")

    def start(self, job: Job, control: RunControl, output: RunOutput) -> Execution:
        env = with_kiln_importable(
            {**job.ready.process_environment(dict(os.environ)), **job.variables}, job.folder
        )
        level = job.address.removeprefix("nice://")
        script = [str(job.ready.interpreter), job.script, *job.arguments]
        process = subprocess.Popen(
            ["nice", "-n", level, *script],
            cwd=job.work,
            env=env,
            stdout=output.file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        control.running(process_group=process.pid)
        return _NicedProcess(process)

    def cancel(self, ref: RunRef, *, grace: float) -> None:
        if ref.process_group:
            os.killpg(ref.process_group, signal.SIGTERM)

    def abandoned(self, ref: RunRef) -> Ended | None:
        return Ended(None, f"{ref.watcher} stopped")


class _NicedProcess:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def follow(self) -> Ended:
        code = self.process.wait()
        return Ended(code) if code == 0 else Ended(code, f"exit code {code}")

    def stop(self, grace: float) -> None:
        self.process.terminate()


def test_a_new_kind_of_target_is_one_registry_entry(
    project: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TARGETS, "nice", _Niced())
    write_script(
        tmp_path / "src",
        "train.py",
        """
        import os
        from kiln import Run
        print("niceness", os.nice(0))
        Run.get_context().log("m", 1)
        os.makedirs("outputs", exist_ok=True)
        open("outputs/o.txt", "w").write("out")
        """,
    )
    request = core.RunRequest(
        script="train.py",
        source_directory=tmp_path / "src",
        environment="py",
        compute_target="nice://7",
    )
    record = core.submit(project, request)
    assert (record.status, record.exit_code, record.compute_target) == ("Completed", 0, "nice://7")
    log = core.log_path(project, record.id).read_text()
    niceness = min(os.nice(0) + 7, 19)  # nice adds to the niceness pytest runs with
    assert "[kiln] niceness 7\n" in log and f"\nniceness {niceness}\n" in log
    info = core.describe_run(project, record.id).details
    assert info["metrics"] == {"m": 1} and info["files"] == ["outputs/o.txt", "logs/output.log"]
    core.add_target(project, name="low", address="nice://19")
    assert [t["kind"] for t in core.list_targets(project)] == ["nice"]
    with pytest.raises(InvalidRequest, match="must look like nice://LEVEL"):
        core.submit(
            project,
            core.RunRequest(
                script="train.py", source_directory=tmp_path / "src", compute_target="nice://x"
            ),
        )
