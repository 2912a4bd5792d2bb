"""The Azure ML-style SDK: ``Environment`` with Azure ML's attribute names, validated at each
assignment; register/get/list against real workspaces (SQLite and PostgreSQL); save and load
in every format; the ``from_*`` constructors, including freezing a real virtualenv."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment, Workspace
from kiln.errors import Conflict, InvalidDefinition, NotFound, ReadOnly
from kiln.formats.dispatch import dropped_fields

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def sample(name: str = "demo") -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        python_version="3.11",
        conda_packages=["numpy=1.26.4"],
        pip_packages=["requests==2.32.3"],
    )
    env.docker.base_image = "python:3.11-slim"
    env.environment_variables = {"MODE": "fast"}
    return env


# --- fields with Azure ML's names ------------------------------------------------------------


def test_a_new_environment_starts_from_the_defaults_on_no_image() -> None:
    env = Environment("demo")

    assert (env.name, env.version, env.description, env.tags) == ("demo", None, None, {})
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path is None
    deps = env.python.conda_dependencies
    assert (deps.get_python_version(), deps.conda_packages, deps.pip_packages) == ("3.11", [], [])
    assert deps.conda_channels == ["anaconda", "conda-forge"]
    assert env.docker.base_image is None
    assert env.docker.base_dockerfile is None
    assert env.docker.base_image_registry.address is None
    assert env.environment_variables == {}
    assert (env.spark.packages, env.spark.precache_packages) == ([], True)
    assert env.created is None
    # Reading the registry created none, and the name is no part of the build.
    assert env.definition.docker.base_image_registry is None
    assert env.build_hash == Environment("other").build_hash


def test_azure_ml_style_assignments_fill_the_definition() -> None:
    env = sample()
    env.python.conda_dependencies.add_channel("conda-forge")
    env.docker.base_image = "registry.example/team/python:3.11"
    env.docker.base_image_registry.address = "registry.example"
    env.docker.base_image_registry.username = "builder"
    env.docker.base_image_registry.password = "${REGISTRY_PASSWORD}"
    env.spark.repositories = ["https://repo.example/maven"]
    env.spark.packages = [{"group": "com.example", "artifact": "lib", "version": "1.0"}]

    definition = env.definition

    assert definition.python.version == "3.11"
    assert definition.python.conda.channels == ["anaconda", "conda-forge"]
    assert definition.python.conda.packages == ["numpy=1.26.4", "pip"]
    assert definition.python.pip.packages == ["requests==2.32.3"]
    assert definition.docker.base_image == "registry.example/team/python:3.11"
    registry = definition.docker.base_image_registry
    assert registry is not None
    assert (registry.address, registry.username, registry.password) == (
        "registry.example",
        "builder",
        "${REGISTRY_PASSWORD}",
    )
    assert definition.environment_variables == {"MODE": "fast"}
    assert definition.spark.packages[0].artifact == "lib"


def test_the_conda_dependencies_editor_is_live() -> None:
    env = sample()

    env.python.conda_dependencies.add_pip_package("six==1.16.0")

    assert env.definition.python.pip.packages == ["requests==2.32.3", "six==1.16.0"]


def test_user_managed_dependencies_with_an_interpreter() -> None:
    env = Environment("system")
    before = env.build_hash

    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/opt/python/bin/python3"

    assert env.definition.python.user_managed is True
    assert env.definition.python.interpreter_path == "/opt/python/bin/python3"
    assert env.build_hash != before


def test_a_dockerfile_replaces_the_image_once_the_image_is_unset() -> None:
    env = sample()

    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM python:3.11-slim\nRUN echo hi\n"

    assert env.docker.base_dockerfile == "FROM python:3.11-slim\nRUN echo hi"  # stripped
    assert env.definition.docker.dockerfile == env.docker.base_dockerfile


def test_a_plain_text_registry_password_is_refused() -> None:
    env = sample()

    with pytest.raises(InvalidDefinition) as caught:
        env.docker.base_image_registry.password = "hunter2"

    message = caught.value.message
    assert message.startswith("`docker.base_image_registry.password`: ")
    assert "${MY_REGISTRY_PASSWORD}" in message
    assert "hunter2" not in message
    assert env.definition.docker.base_image_registry is None


def _set_dockerfile_while_an_image_is_set(env: Environment) -> None:
    env.docker.base_dockerfile = "FROM python:3.12\n"


@pytest.mark.parametrize(
    ("change", "start"),
    [
        (lambda env: setattr(env, "name", "my env"), "`name`: 'my env' is not allowed"),
        (lambda env: setattr(env, "version", "latest"), "`version`: 'latest' is not a version"),
        (
            lambda env: setattr(env, "environment_variables", {"1ST": "x"}),
            "`environment_variables`: variable name '1ST' is invalid",
        ),
        (
            lambda env: env.python.conda_dependencies.add_pip_package("numpy=1.26"),
            "`python.pip.packages`: 'numpy=1.26' is not a valid requirement",
        ),
        (
            lambda env: setattr(env.python, "interpreter_path", 3),
            "`python.interpreter_path`: Input should be a valid string",
        ),
        (_set_dockerfile_while_an_image_is_set, "`docker`: `docker.base_image` and"),
        (
            lambda env: setattr(env.spark, "packages", [{"group": "g", "artifact": "a"}]),
            "`spark.packages[0].version`: is required",
        ),
        (
            lambda env: setattr(env.docker, "base_imag", "python:3.12"),
            "`docker.base_imag` is not a field; did you mean `base_image`?",
        ),
    ],
)
def test_a_bad_assignment_fails_at_its_line_and_changes_nothing(
    change: Callable[[Environment], object], start: str
) -> None:
    env = sample()
    before = env.definition.model_dump()

    with pytest.raises(InvalidDefinition) as caught:
        change(env)

    assert caught.value.message.startswith(start), caught.value.message
    assert env.definition.model_dump() == before


def test_a_bad_value_changed_in_place_is_caught_when_the_definition_is_used() -> None:
    env = sample()

    env.environment_variables["1ST"] = "x"

    with pytest.raises(InvalidDefinition, match=r"`environment_variables` in environment 'demo'"):
        _ = env.build_hash


# --- the registry ----------------------------------------------------------------------------


def test_register_makes_versions_only_for_new_content(workspace: Workspace) -> None:
    env = sample()

    first = env.register(workspace)
    again = env.register(workspace)
    env.environment_variables = {"MODE": "slow"}
    second = env.register(workspace)

    assert (first.version, first.created) == ("1", True)
    assert (again.version, again.created) == ("1", False)
    assert (second.version, second.created) == ("2", True)
    # An env var applies at activation: a new version, the same build.
    assert second.build_hash == first.build_hash
    assert second.definition_digest != first.definition_digest

    assert Environment.get(workspace, "demo").version == "2"
    assert Environment.get(workspace, "demo", "1").environment_variables == {"MODE": "fast"}
    with pytest.raises(NotFound, match="no environment demo:9"):
        Environment.get(workspace, "demo", "9")


def test_a_registered_environment_changed_and_registered_again_is_the_next_version(
    workspace: Workspace,
) -> None:
    registered = sample().register(workspace)

    unchanged = Environment.get(workspace, "demo").register(workspace)
    registered.python.conda_dependencies.add_pip_package("six==1.16.0")
    changed = registered.register(workspace)

    assert (unchanged.version, unchanged.created) == ("1", False)
    assert (changed.version, changed.created) == ("2", True)
    assert changed.build_hash != unchanged.build_hash


def test_an_explicit_version_is_kept(workspace: Workspace) -> None:
    env = sample()
    env.version = "2024.1"

    assert env.register(workspace).version == "2024.1"


def test_list_shows_the_latest_of_each_name_with_the_curated_ones(workspace: Workspace) -> None:
    sample().register(workspace)
    changed = sample()
    changed.environment_variables = {"MODE": "slow"}
    changed.register(workspace)

    listed = Environment.list(workspace)

    assert listed["demo"].version == "2"
    assert "Kiln-minimal-py311" in listed
    assert all(name == "demo" or name.startswith("Kiln-") for name in listed)


def test_the_curated_prefix_is_read_only_and_the_error_suggests_a_name(
    workspace: Workspace,
) -> None:
    with pytest.raises(ReadOnly) as caught:
        sample("Kiln-mine").register(workspace)

    assert "reserved prefix 'Kiln-'" in caught.value.message
    assert "register it as 'mine'" in caught.value.message

    with pytest.raises(ReadOnly):
        Environment.get(workspace, "Kiln-minimal-py311").register(workspace)


def test_a_clone_of_a_curated_environment_registers_without_the_curated_tag(
    workspace: Workspace,
) -> None:
    curated = Environment.get(workspace, "Kiln-minimal-py311")
    assert curated.tags.get("curated") == "true"

    mine = curated.clone("mine").register(workspace)

    assert (mine.name, mine.version, mine.created) == ("mine", "1", True)
    assert "curated" not in mine.tags
    assert mine.build_hash == curated.build_hash


# --- files -----------------------------------------------------------------------------------


def expressible_in(fmt: str, folder: Path) -> Environment:
    """An environment using everything ``fmt`` can hold."""
    if fmt == "requirements":
        # A requirements file holds neither a python version nor channels: read one.
        folder.mkdir()
        (folder / "requirements.txt").write_text(
            "--index-url https://pypi.example/simple\nrequests==2.32.3\nsix==1.16.0\n"
        )
        return Environment.load_from_directory(folder)
    env = Environment("roundtrip")
    env.python.conda_dependencies = sample().python.conda_dependencies
    env.python.conda_dependencies.add_channel("conda-forge")
    if fmt != "conda":
        env.docker.base_image = "python:3.11-slim"
    if fmt != "azure-v2":
        env.environment_variables = {"MODE": "fast"}
    if fmt == "kiln":
        env.spark.packages = [{"group": "com.example", "artifact": "lib", "version": "1.0"}]
    return env


@pytest.mark.parametrize("fmt", ["kiln", "azure-v1", "azure-v2", "conda", "requirements"])
def test_save_then_load_gives_the_same_build(tmp_path: Path, fmt: str) -> None:
    env = expressible_in(fmt, tmp_path / "source")
    assert dropped_fields(env.definition, fmt) == []

    env.save_to_directory(tmp_path / fmt, format=fmt)
    loaded = Environment.load_from_directory(tmp_path / fmt)

    assert loaded.build_hash == env.build_hash
    assert loaded.definition_digest == env.definition_digest


def test_save_refuses_to_replace_a_definition_unless_told(tmp_path: Path) -> None:
    env = sample()
    env.save_to_directory(tmp_path)
    env.environment_variables = {"MODE": "slow"}

    with pytest.raises(Conflict, match="already exists; pass --force \\(overwrite=True\\)"):
        env.save_to_directory(tmp_path)
    assert Environment.load_from_directory(tmp_path).environment_variables == {"MODE": "fast"}

    env.save_to_directory(tmp_path, overwrite=True)
    assert Environment.load_from_directory(tmp_path).environment_variables == {"MODE": "slow"}


def test_from_pip_requirements_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# pinned for the demo\nsix==1.16.0  # why\n\nrequests==2.32.3\n")

    env = Environment.from_pip_requirements("reqs", path)

    assert env.name == "reqs"
    assert env.python.conda_dependencies.pip_packages == ["six==1.16.0", "requests==2.32.3"]


CONDA_FILE = """\
name: from-the-file
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy=1.26.4
  - pip
  - pip:
    - requests==2.32.3
variables:
  MODE: fast
"""


def test_from_conda_specification_takes_the_given_name(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(CONDA_FILE)

    env = Environment.from_conda_specification("conda-env", tmp_path / "environment.yml")

    assert env.name == "conda-env"
    deps = env.python.conda_dependencies
    assert deps.get_python_version() == "3.11"
    assert deps.conda_channels == ["conda-forge"]
    assert deps.conda_packages == ["numpy=1.26.4", "pip"]
    assert deps.pip_packages == ["requests==2.32.3"]
    assert env.environment_variables == {"MODE": "fast"}


def test_from_docker_image_with_a_conda_file(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(CONDA_FILE)

    env = Environment.from_docker_image("img", "python:3.11-slim", tmp_path / "environment.yml")

    assert env.docker.base_image == "python:3.11-slim"
    assert env.python.conda_dependencies.pip_packages == ["requests==2.32.3"]
    assert Environment.from_docker_image("bare", "python:3.11-slim").docker.base_image == (
        "python:3.11-slim"
    )


def test_from_dockerfile_takes_a_path_or_the_text(tmp_path: Path) -> None:
    text = "FROM python:3.11-slim\nRUN pip install six==1.16.0\n"
    (tmp_path / "Dockerfile").write_text(text)

    by_path = Environment.from_dockerfile("df", tmp_path / "Dockerfile")
    by_str_path = Environment.from_dockerfile("df", str(tmp_path / "Dockerfile"))
    by_text = Environment.from_dockerfile("df", text)
    one_line = Environment.from_dockerfile("df", "FROM python:3.11-slim")

    assert by_path.docker.base_dockerfile == by_str_path.docker.base_dockerfile == text.strip()
    assert by_path.build_hash == by_text.build_hash
    assert one_line.docker.base_dockerfile == "FROM python:3.11-slim"


def test_from_dockerfile_with_a_missing_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "Dockerfile"

    for given in (missing, str(missing)):
        with pytest.raises(InvalidDefinition, match="is neither a file nor Dockerfile text"):
            Environment.from_dockerfile("df", given)


def test_a_local_wheel_is_stored_in_the_workspace_and_saved_from_there(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    wheel = source / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    # A real wheel: register refuses a .whl that is not one (issue 15, item 11).
    (tmp_path / "made").mkdir()
    content = make_wheel(tmp_path / "made", "demo", "1.0").read_bytes()
    wheel.write_bytes(content)
    (source / "requirements.txt").write_text(
        "# a local build\nsix==1.16.0\n./wheels/demo-1.0-py3-none-any.whl\n"
    )

    registered = Environment.from_pip_requirements("wheely", source / "requirements.txt").register(
        workspace
    )

    (digest,) = registered.definition.python.pip.file_digests.values()
    assert digest == hashlib.sha256(content).hexdigest()
    stored = workspace.artifacts.lookup(digest)
    assert stored is not None and stored.read_bytes() == content

    shutil.rmtree(source)  # from now on only the workspace holds the wheel
    got = Environment.get(workspace, "wheely")
    got.save_to_directory(tmp_path / "elsewhere", format="requirements")

    copied = tmp_path / "elsewhere" / "wheels" / "demo-1.0-py3-none-any.whl"
    assert copied.read_bytes() == content
    # A requirements file keeps the pip part (not the python version or channels).
    loaded = Environment.load_from_directory(tmp_path / "elsewhere")
    assert loaded.definition.python.pip == got.definition.python.pip


# --- freezing a real virtualenv --------------------------------------------------------------


def make_wheel(folder: Path, name: str = "localpkg", version: str = "1.0") -> Path:
    """A small valid wheel, so an installer takes it."""
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real virtualenv made by uv, with pip and setuptools, six from PyPI and a local wheel."""
    from uv import find_uv_bin

    folder = tmp_path_factory.mktemp("frozen")
    prefix = folder / "venv"
    uv = find_uv_bin()
    subprocess.run(
        [uv, "venv", "--seed", "--quiet", "--python", sys.executable, str(prefix)], check=True
    )
    wheel = make_wheel(folder)
    python = str(prefix / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "six==1.16.0", str(wheel)],
        check=True,
    )
    return prefix


@pytest.mark.parametrize("by", ["prefix", "interpreter"])
def test_from_existing_environment_freezes_what_is_installed(venv: Path, by: str) -> None:
    target = venv if by == "prefix" else venv / "bin" / "python"

    with pytest.warns(
        UserWarning, match=r"left out of 'frozen': localpkg \(installed from a local"
    ):
        env = Environment.from_existing_environment("frozen", target)

    deps = env.python.conda_dependencies
    assert deps.get_python_version() == PYTHON
    assert "six==1.16.0" in deps.pip_packages
    names = {p.split("==")[0].lower() for p in deps.pip_packages}
    assert not names & {"pip", "setuptools", "wheel", "localpkg"}
    assert deps.conda_packages == []


def test_from_existing_environment_refuses_what_is_no_interpreter(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition, match="is neither a Python interpreter nor a virtualenv"):
        Environment.from_existing_environment("nothing", tmp_path)

    script = tmp_path / "not-python"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    with pytest.raises(InvalidDefinition, match="is not a Python interpreter"):
        Environment.from_existing_environment("nothing", script)
