"""``kiln env show`` and an unchanged ``kiln env register`` answer with the standard library
(kiln.envdetail, kiln.sourcememo, registry/fastread.py): what they print, on stdout and stderr,
must be byte for byte what the full path prints, and they must import neither SQLAlchemy nor
pydantic. ``list``, ``show``, ``register``, ``exec`` and ``which`` parse with a short tree
(cli/parsing.py) that leaves help, errors and anything unusual to the full tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln import __version__
from kiln.accounts import local_actor
from kiln.cli.main import build_parser, main, plain_exec
from kiln.cli.parsing import parse_short
from kiln.workspace import Workspace
from kilntesting.cli import IMPORT_PROBE
from kilntesting.samples import REFERENCES, SECRETS, register_samples


@pytest.fixture
def samples(tmp_path: Path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    register_samples(ws, tmp_path / "sources")
    ws.close()
    return ws


def _printed(
    capsys: pytest.CaptureFixture[str], argv: list[str], *, fast: bool
) -> tuple[int | None, str, str]:
    """One path of the command, in this process: the fast handler or the full one."""
    args = build_parser().parse_args(argv)
    code = args.fast(args) if fast else args.handler(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _probe(argv: list[str], cwd: Path) -> tuple[str, str, dict[str, object]]:
    """The real CLI in a fresh interpreter: its output, and the heavy modules it imported."""
    env = {**os.environ, "KILN_CACHE_DIR": str(cwd / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    err, _, facts = result.stderr.rstrip("\n").rpartition("\n")
    return result.stdout, err.removesuffix("\n"), json.loads(facts)


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_show_prints_what_the_full_path_prints(
    samples: Workspace, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    for reference in REFERENCES:
        argv = ["-w", str(samples.path), "env", "show", reference, *flags]
        fast = _printed(capsys, argv, fast=True)
        assert fast[0] == 0, f"the fast path stepped aside for {reference}"
        assert fast == _printed(capsys, argv, fast=False), reference
        assert not any(secret in fast[1] for secret in SECRETS), fast[1]
    everything = json.loads(_printed(capsys, [*argv[:4], "everything", "--json"], fast=True)[1])
    assert everything["definition"]["python"]["conda"]["channels"][1].count("${CHAN_TOKEN}") == 1
    bare = _printed(capsys, [*argv[:4], "bare", *flags], fast=True)[1]
    assert "Kiln-minimal-py311:1" in bare  # a build shared with a curated environment


def test_show_says_who_registered_a_version_on_both_paths(
    samples: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-w", str(samples.path), "env", "show"]
    for fast in (True, False):
        text = _printed(capsys, [*argv, "bare"], fast=fast)[1]
        assert re.search(rf"^registered by: +{local_actor()}$", text, re.M), text
        shown = json.loads(_printed(capsys, [*argv, "bare", "--json"], fast=fast)[1])
        assert shown["created_by"] == local_actor()
        curated = json.loads(
            _printed(capsys, [*argv, "Kiln-minimal-py311", "--json"], fast=fast)[1]
        )
        assert curated["created_by"] is None  # nobody registered it: Kiln ships it


def test_show_with_runs_takes_the_fast_path_too(
    samples: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in (["--runs"], ["--runs", "--json"]):
        argv = ["-w", str(samples.path), "env", "show", "tagged", *flags]
        fast = _printed(capsys, argv, fast=True)
        assert fast[0] == 0 and fast == _printed(capsys, argv, fast=False)


def test_show_imports_neither_sqlalchemy_nor_pydantic(samples: Workspace, tmp_path: Path) -> None:
    for reference, flags in (
        ("tagged", []),
        ("everything", ["--json"]),
        ("Kiln-minimal-py311", []),
    ):
        out, err, facts = _probe(
            ["-w", str(samples.path), "env", "show", reference, *flags], tmp_path
        )
        assert facts == {"code": 0, "heavy": []}, (reference, err)
        assert out.startswith("name:") or json.loads(out)["name"] == reference


def test_show_leaves_what_it_cannot_answer_to_the_full_path(
    samples: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = ["-w", str(samples.path)]
    for reference in ("missing", "plain:9", "gone", "Kiln-nothing", "Kiln-minimal-py311:2"):
        args = build_parser().parse_args([*where, "env", "show", reference])
        assert args.fast(args) is None, reference
    # And through main: the full path's error, exit code and nothing else.
    assert main([*where, "env", "show", "missing"]) == 3
    assert capsys.readouterr().err.startswith("kiln: error: no environment missing in ")
    assert main([*where, "env", "show", "a:b:c"]) == 2  # parse_reference's own message
    assert "has more than one ':'" in capsys.readouterr().err
    # --build reports the build on this machine: the full path, through the short tree.
    out, _, facts = _probe([*where, "env", "show", "bare", "--build"], tmp_path)
    assert facts["code"] == 0 and "build on this machine:" in out and "pydantic" in facts["heavy"]


def _settle(folder: Path) -> None:
    """Date the files back: a source changed moments before it was read is never remembered
    (the loader may have read other bytes than those hashed after it; see kiln.sourcememo)."""
    past = time.time() - 60
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (past, past))


def _sources(folder: Path) -> dict[str, Path]:
    """A definition in each format, one with loader warnings and one with an included file."""
    made = {
        "kiln": folder / "kiln" / "kiln.yaml",
        "requirements": folder / "reqs" / "requirements.txt",
        "conda": folder / "conda" / "environment.yml",
        "azure-v2": folder / "v2" / "environment.yaml",
    }
    for path in made.values():
        path.parent.mkdir(parents=True)
    made["kiln"].write_text(
        "name: fromfile\ndescription: from a file\ntags: {a: b}\n"
        "python:\n  version: '3.11'\n  pip:\n    packages: [numpy==2.1.0]\n"
        "environment_variables:\n  API_KEY: ${THE_KEY}\n"
    )
    made["requirements"].write_text(
        "--index-url https://one.example/simple\n--index-url https://two.example/simple\n"
        "-r more.txt\nnumpy==2.1.0\n"
    )
    (folder / "reqs" / "more.txt").write_text("six==1.16.0\n")
    made["conda"].write_text("name: condaenv\ndependencies:\n  - python=3.11\n  - numpy=1.26\n")
    made["azure-v2"].write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: azenv\nimage: mcr.microsoft.com/azureml/minimal:1\n"
    )
    _settle(folder)
    return made


def test_an_unchanged_register_prints_what_the_full_path_prints(
    samples: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sources = _sources(tmp_path / "defs")
    where = ["-w", str(samples.path), "env", "register"]
    commands = [
        ["-f", str(sources["kiln"])],
        ["-d", str(sources["kiln"].parent), "--json"],
        ["-f", str(sources["kiln"]), "-n", "renamed", "--version", "7"],
        ["-d", str(sources["requirements"].parent)],  # two loader warnings on stderr
        ["-f", str(sources["conda"]), "--format", "conda", "--json"],
        ["-d", str(sources["azure-v2"].parent)],
        ["-d", str(sources["kiln"].parent), "-n", "bare", "--json"],  # a new version of bare
    ]
    for command in commands:
        first = _printed(capsys, [*where, *command], fast=False)  # registers, and remembers
        assert first[0] == 0, first
        fast = _printed(capsys, [*where, *command], fast=True)
        assert fast[0] == 0, f"the fast path stepped aside for {command}"
        assert fast == _printed(capsys, [*where, *command], fast=False), command
        assert "Unchanged" in fast[1] or '"created": false' in fast[1]
    assert _printed(capsys, [*where, *commands[3]], fast=True)[2].count("replaces") == 1
    out, err, facts = _probe([*where, *commands[3]], tmp_path)
    assert facts == {"code": 0, "heavy": []}, err
    assert out.startswith("Unchanged: same content as reqs:") and "kiln: warning:" in err


def test_register_is_remembered_only_while_nothing_it_read_changed(
    samples: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = _sources(tmp_path / "defs")["requirements"]
    argv = ["-w", str(samples.path), "env", "register", "-f", str(source)]

    def fast() -> int | None:
        return _printed(capsys, argv, fast=True)[0]

    def full() -> str:
        return _printed(capsys, argv, fast=False)[1]

    assert fast() is None  # never registered
    assert full().startswith("Registered reqs:1") and fast() == 0
    (source.parent / "more.txt").write_text("six==1.17.0\n")  # an included file changes
    assert fast() is None
    assert full().startswith("Registered reqs:2")
    assert fast() is None  # just written: not remembered yet
    _settle(source.parent)
    assert full().startswith("Unchanged: same content as reqs:2") and fast() == 0
    (source.parent / "kiln.yaml").write_text("name: other\n")  # would now be read instead of
    assert fast() is None  # requirements.txt by -d; with -f, the folder's listing still counts
    (source.parent / "kiln.yaml").unlink()
    _settle(source.parent)
    assert fast() is None  # the folder changed since: the full path looks once more
    assert full().startswith("Unchanged") and fast() == 0
    with_name = [*argv, "--name", "reqs-two"]
    args = build_parser().parse_args(with_name)
    assert args.fast(args) is None  # another name is another source


def test_register_steps_aside_when_the_registry_changed(
    samples: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = _sources(tmp_path / "defs")["kiln"]
    argv = ["-w", str(samples.path), "env", "register", "-f", str(source), "--version", "3"]
    assert _printed(capsys, argv, fast=False)[1].startswith("Registered fromfile:3")
    assert _printed(capsys, argv, fast=True)[0] == 0
    assert main(["-w", str(samples.path), "env", "archive", "fromfile:3"]) == 0
    capsys.readouterr()
    fast = _printed(capsys, argv, fast=True)
    assert fast[1] == "Unchanged: same content as fromfile:3 (archived)\n"
    assert fast == _printed(capsys, argv, fast=False)
    # Another workspace holds nothing of it: the remembered digest finds no version there.
    other = Workspace.create(tmp_path / "other")
    elsewhere = ["-w", str(other.path), *argv[2:]]
    args = build_parser().parse_args(elsewhere)
    assert args.fast(args) is None
    assert main(elsewhere) == 0
    assert capsys.readouterr().out.startswith("Registered fromfile:3")


def test_local_inputs_are_never_remembered(
    samples: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "withcontext"
    (folder / "ctx").mkdir(parents=True)
    (folder / "ctx" / "Dockerfile").write_text("FROM debian:12\n")
    (folder / "kiln.yaml").write_text("name: ctxenv\ndocker:\n  build_context: ctx\n")
    _settle(folder)
    argv = ["-w", str(samples.path), "env", "register", "-d", str(folder)]
    for _ in range(2):
        assert _printed(capsys, argv, fast=False)[0] == 0
        assert _printed(capsys, argv, fast=True)[0] is None
    assert not (samples.root / "registered").exists()


def test_the_short_tree_leaves_help_errors_and_versions_to_the_full_tree(tmp_path: Path) -> None:
    def kiln(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kiln", *argv], cwd=tmp_path, capture_output=True, text=True
        )

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices["env"]._subparsers._group_actions[0]  # type: ignore[union-attr]
    for command in ("list", "show", "register", "exec", "which", "build"):
        shown = kiln("env", command, "--help")
        assert (shown.returncode, shown.stdout) == (0, commands.choices[command].format_help())
    missing = kiln("env", "show")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.endswith("error: the following arguments are required: NAME[:VERSION]\n")
    assert missing.stderr.startswith("usage: kiln env show [-h]")
    twice = kiln("--version", "env", "show", "x")
    assert (twice.returncode, twice.stdout) == (0, f"kiln {__version__}\n")
    assert kiln("--help").stdout == parser.format_help()


def test_build_parses_the_same_through_the_short_tree() -> None:
    for argv in (
        ["env", "build", "demo"],
        ["-w", "/somewhere", "--debug", "env", "build", "demo:2", "--refresh", "--json"],
        ["env", "build", "demo", "--retry", "--host-only", "--refresh-base"],
    ):
        short = parse_short(argv)
        assert short is not None, argv
        assert vars(short) == vars(build_parser().parse_args(argv)), argv
    assert parse_short(["env", "build"]) is None  # an error: the full tree prints it


def test_run_submit_parses_the_same_through_the_short_tree() -> None:
    for argv in (
        ["run", "submit", "train.py"],
        ["-w", "/ws", "run", "submit", "--env", "demo:2", "--target", "container", "train.py"],
        ["run", "submit", "--env-file", "e.yml", "-d", "src", "--detach", "--json", "t.py", "--", "--lr", "1"],
        ["run", "submit", "-e", "exp", "train.py", "--help"],  # the script's --help, not kiln's
    ):  # fmt: skip
        short = parse_short(argv)
        assert short is not None, argv
        assert vars(short) == vars(build_parser().parse_args(argv)), argv
    for wrong in (["run", "submit"], ["run", "submit", "--env", "a", "--env-file", "b", "t.py"]):
        assert parse_short(wrong) is None, wrong  # errors: the full tree prints them
    assert parse_short(["run", "submit", "--help"]) is None
    assert parse_short(["run", "list"]) is None  # no short tree: the full one parses it


def test_the_plain_exec_form_reads_what_the_trees_read() -> None:
    # kiln.cli.main reads the plainest warm exec without argparse: it must agree with it.
    keys = ("workspace", "debug", "reference", "command")
    for argv in (
        ["env", "exec", "demo", "--", "python", "-c", "pass"],
        ["-w", "/ws", "--debug", "env", "exec", "demo:2", "--", "python", "--version"],
        ["--workspace", "/a", "-w", "/b", "env", "exec", "demo", "--", "--", "x"],
        ["env", "exec", "demo", "--", "sh", "-c", "echo $0", "--debug"],
    ):
        plain = plain_exec(argv)
        assert plain is not None, argv
        full = build_parser().parse_args(argv)
        assert {k: getattr(plain, k) for k in keys} == {k: getattr(full, k) for k in keys}, argv
        assert full.fast.__name__ == "exec_fast"
    for other in (
        ["env", "exec", "demo", "python", "-c", "pass"],  # no --: the trees read it
        ["env", "exec", "--help"],
        ["env", "exec", "demo", "--"],  # no command: the handler's error
        ["-w", "--debug", "env", "exec", "demo", "--", "x"],  # an option where a path belongs
        ["--version"],
        ["env", "which", "demo"],
        ["env", "exec", "-x", "--", "y"],
        ["-w"],
    ):
        assert plain_exec(other) is None, other


def test_postgresql_keeps_the_full_path(
    postgres_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The standard library has no PostgreSQL driver: show and register go through the catalog
    # (the curated index alone cannot say which registered versions share a build).
    ws = Workspace.create(tmp_path / "pg", database_url=postgres_url)
    source = _sources(tmp_path / "defs")["kiln"]
    where = ["-w", str(ws.path), "env"]
    try:
        for argv in (["register", "-f", str(source)], ["show", "fromfile"], ["show", "Kiln-x"]):
            args = build_parser().parse_args([*where, *argv])
            assert args.fast(args) is None, argv
        assert main([*where, "register", "-f", str(source)]) == 0
        assert main([*where, "register", "-f", str(source)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "Unchanged: same content as fromfile:1"
        args = build_parser().parse_args([*where, "register", "-f", str(source)])
        assert args.fast(args) is None and not (ws.root / "registered").exists()
        assert main([*where, "show", "Kiln-minimal-py311", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["curated"] is True
    finally:
        ws.close()
