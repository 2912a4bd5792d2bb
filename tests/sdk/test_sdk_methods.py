"""azureml-core methods the SDK lacked: from_pip_requirements(pip_version=), set_pip_option,
as_dict, from_existing_conda_environment (a real prefix made by Kiln's conda builder) and
add_private_pip_wheel (a real wheel stored in a real workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment
from kiln.builders import conda
from kiln.builders.base import BuildContext
from kiln.buildlog import NullLog
from kiln.environment.validation import validate_definition
from kiln.errors import Conflict, InvalidDefinition, NotFound
from kiln.wheels import list_wheels
from kiln.workspace import Workspace
from kilntesting.builds import make_wheel
from kilntesting.conda_channel import hello_channel


def requirements(folder: Path) -> Path:
    path = folder / "requirements.txt"
    path.write_text("--extra-index-url https://mirror.example/simple\nsix==1.16.0\n")
    return path


@pytest.mark.parametrize(("pip_version", "pip"), [(None, "pip"), ("23.1", "pip=23.1")])
def test_from_pip_requirements_adds_pip_to_the_defaults(
    tmp_path: Path, pip_version: str | None, pip: str
) -> None:
    env = Environment.from_pip_requirements("reqs", requirements(tmp_path), pip_version=pip_version)

    python = env.definition.python
    assert (python.version, python.conda.channels) == ("3.11", ["anaconda", "conda-forge"])
    assert python.conda.packages == [pip]
    assert python.pip.packages == ["six==1.16.0"]
    assert python.pip.extra_index_urls == ["https://mirror.example/simple"]


def test_from_pip_requirements_refuses_a_bad_pip_version(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition, match=r"python\.conda\.packages"):
        Environment.from_pip_requirements("reqs", requirements(tmp_path), pip_version="$(id)")


def test_set_pip_option_replaces_the_option_of_the_same_name() -> None:
    deps = CondaDependencies.create(pip_packages=["six==1.16.0"])

    deps.set_pip_option("--extra-index-url https://one.example/simple")
    deps.set_pip_option("--extra-index-url https://two.example/simple")
    deps.set_pip_option("--pre")
    deps.set_pip_index_url("--index-url https://index.example/simple")  # azureml-core's form

    assert deps.pip_options == [
        "--index-url https://index.example/simple",
        "--extra-index-url https://two.example/simple",
        "--pre",
    ]
    assert deps.pip_packages == ["six==1.16.0"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("requests", "`python.pip`: 'requests' is not a pip option"),
        ("--no-deps", "'--no-deps' in set_pip_option is not supported"),
        ("--extra-index-url http://plain.example/simple", "plain http"),
    ],
)
def test_set_pip_option_refuses_what_kiln_cannot_keep(option: str, message: str) -> None:
    deps = CondaDependencies.create(pip_packages=["six==1.16.0"])
    before = deps.as_dict()

    with pytest.raises(InvalidDefinition, match=message):
        deps.set_pip_option(option)
    assert deps.as_dict() == before


def test_as_dict_is_the_conda_file_as_plain_data() -> None:
    deps = CondaDependencies.create(conda_packages=["numpy=1.26.4"], pip_packages=["six==1.16.0"])

    data = deps.as_dict()
    data["dependencies"].append("changed")

    assert deps.as_dict() == {
        "name": "project_environment",
        "channels": ["anaconda", "conda-forge"],
        "dependencies": ["python=3.11", "numpy=1.26.4", "pip", {"pip": ["six==1.16.0"]}],
    }


def test_from_existing_conda_environment_reads_a_prefix_kilns_builder_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = hello_channel(tmp_path / "channel")
    definition = validate_definition(
        {
            "name": "made",
            "python": {
                "version": "3.11",
                "conda": {"channels": [str(channel.root)], "packages": ["hello-tool>=1.0"]},
            },
        }
    )
    ctx = BuildContext(NullLog(), tmp_path / "cache" / "uv")
    target = conda.target(definition, ctx)
    prefix = tmp_path / "envs" / "made"
    prefix.mkdir(parents=True)
    conda.build(definition, conda.resolve(definition, target, ctx), target, prefix, ctx)
    monkeypatch.setenv("CONDA_ENVS_PATH", str(tmp_path / "envs"))

    by_name = Environment.from_existing_conda_environment("ported", "made")
    by_path = Environment.from_existing_conda_environment("ported", prefix)

    python = by_name.definition.python
    assert python.version == "3.11"
    assert python.conda.packages == ["hello-lib=2.0", "hello-tool=1.0"]  # --no-builds
    assert python.conda.channels == [f"file://{channel.root}"]
    assert python.pip.packages == []
    assert by_path.build_hash == by_name.build_hash


def test_from_existing_conda_environment_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDA_ENVS_PATH", str(tmp_path))

    with pytest.raises(
        NotFound, match=f"no conda environment named 'absent' \\(looked in {tmp_path}"
    ):
        Environment.from_existing_conda_environment("ported", "absent")


def test_add_private_pip_wheel_stores_it_and_names_the_entry(
    workspace: Workspace, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "made", "demo", "1.0")

    entry = Environment.add_private_pip_wheel(workspace, wheel)
    env = Environment("private")
    env.python.conda_dependencies.add_pip_package(entry)
    registered = env.register(workspace)

    assert entry == "wheel:demo-1.0-py3-none-any.whl"
    assert [w.filename for w in list_wheels(workspace)] == ["demo-1.0-py3-none-any.whl"]
    assert registered.definition.python.pip.packages == [entry]
    # As azureml-core: the same name again is an error unless exist_ok.
    with pytest.raises(Conflict, match="is stored already; pass exist_ok=True"):
        Environment.add_private_pip_wheel(workspace, wheel)
    assert Environment.add_private_pip_wheel(workspace, wheel, exist_ok=True) == entry


def test_add_private_pip_wheel_refuses_a_missing_file(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"does not exist; pass the path of a \.whl file"):
        Environment.add_private_pip_wheel(workspace, tmp_path / "demo-1.0-py3-none-any.whl")
