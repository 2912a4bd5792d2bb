"""Azure ML SDK v1 folders: the SDK's own files load, save -> load is the identity, bad input
gives one clear error, and (marked ``azureml``) the real azureml-core reads what Kiln writes."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_hash, definition_digest, definition_form
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.formats import azure_v1
from kiln.formats.base import RegisteredReference, resolve_local_inputs
from kilntesting.cli import cached_venv, run_or_fail
from kilntesting.gitserver import git

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azureml_v1"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
AZUREML_CORE = "azureml-core==1.61.0.post4"
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"


def load_fixture(name: str) -> azure_v1.Loaded:
    return azure_v1.load(FIXTURES / name)


def write_json(folder: Path, data: dict[str, Any], **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / azure_v1.DEFINITION_FILE).write_text(json.dumps(data, indent=4))
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def sdk_json(**overrides: Any) -> dict[str, Any]:
    """The SDK's JSON for a fresh environment, with some keys replaced."""
    data: dict[str, Any] = json.loads(
        (FIXTURES / "conda_pip" / azure_v1.DEFINITION_FILE).read_text()
    )
    data.update(overrides)
    return data


def round_trip(definition: EnvironmentDefinition, folder: Path) -> EnvironmentDefinition:
    azure_v1.save(definition, folder)
    return azure_v1.load(folder).definition


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


# --- the SDK's own files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FOLDERS if n != "build_context"])
def test_fixture_loads_and_saves_back_as_the_sdk_wrote_it(name: str, tmp_path: Path) -> None:
    loaded = load_fixture(name)
    assert loaded.files[0] == FIXTURES / name / azure_v1.DEFINITION_FILE
    azure_v1.save(loaded.definition, tmp_path)
    assert azure_v1.load(tmp_path).definition == loaded.definition
    written = (tmp_path / azure_v1.DEFINITION_FILE).read_text()
    if name != "registry_password":  # the one file whose plain-text password Kiln drops
        assert written == (FIXTURES / name / azure_v1.DEFINITION_FILE).read_text()


def test_conda_pip_fixture() -> None:
    loaded = load_fixture("conda_pip")
    d = loaded.definition
    assert (d.name, d.version) == ("conda-pip", None)
    assert d.python.version == "3.10"
    assert d.python.conda.channels == ["anaconda", "conda-forge"]
    # `pip` is added to the conda packages: conda_env's normal form for a pip sub-list.
    assert d.python.conda.packages == ["numpy=1.26", "scikit-learn", "pip"]
    assert d.python.pip.packages == ["requests==2.31.0", "pandas>=2"]
    # azureml-core's two default PyPI lines carry no information and are dropped.
    assert d.python.pip.extra_index_urls == [] and d.python.pip.find_links == []
    assert d.environment_variables == {"MY_FLAG": "1"}
    assert d.docker.base_image == DEFAULT_IMAGE
    assert d.docker.platform is not None and d.docker.platform.os == "linux"
    assert not d.python.user_managed and d.python.interpreter_path is None
    assert loaded.warnings == ()
    assert {p.name for p in loaded.files} == {azure_v1.DEFINITION_FILE, azure_v1.CONDA_FILE}


def test_user_managed_fixture_keeps_the_default_conda_file_as_data() -> None:
    d = load_fixture("user_managed").definition
    assert d.python.user_managed
    assert d.python.interpreter_path == "/opt/venv/bin/python"
    assert d.python.version == "3.8.13"
    assert d.python.pip.packages == ["azureml-defaults"]
    assert d.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert d.docker.base_image == "myregistry.example/team/train:1.2"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("dockerfile", "FROM python:3.11-slim\nRUN pip install numpy"),
        ("from_dockerfile", "FROM ubuntu:22.04\nRUN echo hi"),
    ],
)
def test_dockerfile_fixtures(name: str, text: str) -> None:
    loaded = load_fixture(name)
    assert loaded.definition.docker.dockerfile == text
    assert loaded.definition.docker.base_image is None
    assert FIXTURES / name / azure_v1.DOCKERFILE in loaded.files


def test_registry_password_is_dropped_with_a_warning_that_never_shows_it() -> None:
    loaded = load_fixture("registry_password")
    registry = loaded.definition.docker.base_image_registry
    assert registry is not None
    assert (registry.address, registry.username, registry.password) == (
        "private.example",
        "bob",
        None,
    )
    assert loaded.definition.docker.base_image == "private.example/img:2"
    (warning,) = loaded.warnings
    assert "`docker.baseImageRegistry.password`" in warning and "${" in warning
    assert "hunter2" not in warning
    assert "hunter2" not in repr(loaded)


def test_spark_fixture() -> None:
    spark = load_fixture("spark").definition.spark
    assert spark.repositories == ["https://repo.example/maven"]
    (package,) = spark.packages
    assert (package.group, package.artifact, package.version) == (
        "com.microsoft.ml.spark",
        "mmlspark_2.11",
        "0.15",
    )
    assert spark.precache_packages is False


@pytest.mark.parametrize("name", ["from_pip_reqs", "from_dockerfile"])
def test_a_comment_line_is_not_a_package(name: str) -> None:
    loaded = load_fixture(name)
    assert loaded.definition.python.pip.packages == ["numpy==1.26.4", "requests>=2"]
    assert any("# a comment line" in w and "comment" in w for w in loaded.warnings)


def test_inferencing_and_platform_fixtures() -> None:
    assert load_fixture("inferencing").definition.inferencing_stack_version == "latest"
    assert load_fixture("inferencing").definition.python.pip.packages == [
        "azureml-defaults",
        "flask==2.3.3",
    ]
    platform = load_fixture("docker_platform").definition.docker.platform
    assert platform is not None and (platform.os, platform.architecture) == ("linux", "arm64")


def test_a_storage_account_build_context_is_a_clear_error_that_does_not_show_the_url(
    tmp_path: Path,
) -> None:
    data = json.loads((FIXTURES / "build_context" / "azureml_environment.json").read_text())
    data["docker"]["buildContext"] = {
        "locationType": "storageAccount",
        "location": "https://acct.blob.core.windows.net/ctx?sig=s3cr3t",
        "dockerfilePath": "Dockerfile",
    }
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.load(write_json(tmp_path / "storage", data))
    message = caught.value.message
    assert message.startswith("`docker.buildContext` in ")
    assert "remote storageAccount location" in message and "`docker.build_context`" in message
    assert "s3cr3t" not in message and "blob.core" not in message


def test_loading_writes_nothing(tmp_path: Path) -> None:
    for name in FOLDERS:
        shutil.copytree(FIXTURES / name, tmp_path / name)
    before = snapshot(tmp_path)
    for name in FOLDERS:
        if name == "build_context":  # a git context on github.com: reading it asks the network
            continue
        with contextlib.suppress(InvalidDefinition):
            azure_v1.load(tmp_path / name)
    assert snapshot(tmp_path) == before


# --- reading rules ---------------------------------------------------------------------------


def test_inline_conda_and_dockerfile_are_read_and_files_win(tmp_path: Path) -> None:
    inline = {"name": "x", "dependencies": ["python=3.9", {"pip": ["attrs"]}]}
    data = sdk_json(python={"condaDependencies": inline})
    data["docker"] = {"baseImage": None, "baseDockerfile": "FROM inline"}
    d = azure_v1.load(write_json(tmp_path / "inline", data)).definition
    assert (d.python.version, d.python.pip.packages, d.docker.dockerfile) == (
        "3.9",
        ["attrs"],
        "FROM inline",
    )
    files = {
        azure_v1.CONDA_FILE: "dependencies: [python=3.12]\n",
        azure_v1.DOCKERFILE: "FROM file\n",
    }
    d = azure_v1.load(write_json(tmp_path / "both", data, **files)).definition
    assert (d.python.version, d.python.pip.packages, d.docker.dockerfile) == (
        "3.12",
        [],
        "FROM file",
    )


def test_base_image_with_dockerfile_keeps_the_dockerfile_and_warns(tmp_path: Path) -> None:
    folder = write_json(tmp_path, sdk_json(), **{azure_v1.DOCKERFILE: "FROM scratch\n"})
    loaded = azure_v1.load(folder)
    assert loaded.definition.docker.base_image is None
    assert loaded.definition.docker.dockerfile == "FROM scratch"
    assert any("`docker.baseImage`" in w and "Dockerfile" in w for w in loaded.warnings)


def test_password_reference_is_kept_and_written_back(tmp_path: Path) -> None:
    data = sdk_json()
    data["docker"]["baseImageRegistry"] = {"address": "r.example", "password": "${REG_PASS}"}
    loaded = azure_v1.load(write_json(tmp_path / "in", data))
    registry = loaded.definition.docker.base_image_registry
    assert registry is not None and registry.password == "${REG_PASS}"
    assert loaded.warnings == ()
    azure_v1.save(loaded.definition, tmp_path / "out")
    written = json.loads((tmp_path / "out" / azure_v1.DEFINITION_FILE).read_text())
    assert written["docker"]["baseImageRegistry"]["password"] == "${REG_PASS}"


def test_unknown_keys_are_ignored_and_unrepresentable_content_warns(tmp_path: Path) -> None:
    data = sdk_json(someFutureKey={"a": 1}, r={"rVersion": "4.0"})
    data["databricks"]["pypiLibraries"] = [{"package": "x"}]
    data["docker"].update(arguments=["--gpus", "all"], shmSize="8g", unknown=True)
    warnings = azure_v1.load(write_json(tmp_path, data)).warnings
    assert len(warnings) == 2
    assert warnings[0].startswith("`r` in ") and warnings[1].startswith("`databricks` in ")


def test_run_settings_and_asset_id_are_kept_outside_the_build_hash(tmp_path: Path) -> None:
    plain = azure_v1.load(write_json(tmp_path / "plain", sdk_json())).definition
    data = sdk_json(assetId="azureml://locations/x/environments/conda-pip/versions/2")
    data["docker"].update(enabled=True, shmSize="8g", arguments=["--gpus", "all"])
    kept = azure_v1.load(write_json(tmp_path / "kept", data))
    docker = kept.definition.docker
    assert (docker.enabled, docker.shm_size, docker.arguments) == (True, "8g", ["--gpus", "all"])
    assert kept.definition.asset_id == "azureml://locations/x/environments/conda-pip/versions/2"
    assert kept.warnings == ()
    assert build_hash(kept.definition) == build_hash(plain)
    assert definition_digest(kept.definition) != definition_digest(plain)
    only_asset = azure_v1.load(write_json(tmp_path / "asset", sdk_json(assetId="a"))).definition
    assert definition_digest(only_asset) == definition_digest(plain)  # like description
    azure_v1.save(kept.definition, tmp_path / "again")
    again = json.loads((tmp_path / "again" / azure_v1.DEFINITION_FILE).read_text())
    assert again == {**data, "python": again["python"]}  # the conda part is a file again


def test_the_sdks_run_defaults_are_stored_as_absent(tmp_path: Path) -> None:
    """So a folder the SDK wrote has the definition digest it had before these were kept."""
    data = sdk_json()
    assert (data["docker"]["enabled"], data["docker"]["shmSize"]) == (False, "2g")
    docker = azure_v1.load(write_json(tmp_path, data)).definition.docker
    assert (docker.enabled, docker.shm_size, docker.arguments) == (False, None, [])
    assert "docker_run" not in definition_form(azure_v1.load(tmp_path).definition)


@pytest.mark.parametrize(
    ("docker", "expected"),
    [
        ({"shmSize": "lots"}, "`docker.shm_size` in {source}: 'lots' is not allowed"),
        (
            {"arguments": ["--gpus", 1]},
            "`docker.arguments[1]` in {source} must be a string, not an integer",
        ),
        (
            {"enabled": "true"},
            "`docker.enabled` in {source} must be true or false (no quotes), not a string",
        ),
    ],
)
def test_bad_run_settings_name_the_field(
    docker: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    data = sdk_json()
    data["docker"].update(docker)
    source = write_json(tmp_path, data) / azure_v1.DEFINITION_FILE
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.load(tmp_path)
    assert str(caught.value).startswith(expected.format(source=source))


def test_shared_volumes_off_is_dropped_with_a_warning(tmp_path: Path) -> None:
    data = sdk_json()
    data["docker"]["sharedVolumes"] = False
    source = write_json(tmp_path, data) / azure_v1.DEFINITION_FILE
    assert azure_v1.load(tmp_path).warnings == (
        f"`docker.sharedVolumes: false` in {source} has no Kiln equivalent; ignored (written "
        "back as the SDK's default, true)",
    )


@pytest.mark.parametrize(
    ("data", "reference"),
    [({"name": "base", "version": "3"}, "base:3"), ({"name": "base"}, "base")],
)
def test_name_and_version_alone_are_a_reference(
    data: dict[str, Any], reference: str, tmp_path: Path
) -> None:
    source = write_json(tmp_path, data) / azure_v1.DEFINITION_FILE
    with pytest.raises(RegisteredReference) as caught:
        azure_v1.load(tmp_path)
    found = caught.value
    assert (found.name, found.version, found.reference) == (
        "base",
        data.get("version"),
        reference,
    )
    assert found.message == (
        f"{source} holds only `name` and `version`: a reference to the registered environment "
        f"{reference}, which needs a workspace to resolve; open one (--workspace, "
        "KILN_WORKSPACE) or export the environment in full"
    )
    assert found.exit_code == 2


def test_dropped_fields_names_what_v1_cannot_hold() -> None:
    described = FULL.model_copy(
        update={"description": "d", "tags": {"team": "ml"}, "inference_config": {}}
    )
    assert azure_v1.dropped_fields(described) == ["description", "tags", "inference_config"]
    assert azure_v1.dropped_fields(FULL) == []


def test_conda_variables_join_the_environment_variables(tmp_path: Path) -> None:
    conda = "dependencies: [python=3.11]\nvariables: {FROM_CONDA: a, MY_FLAG: conda}\n"
    folder = write_json(tmp_path, sdk_json(), **{azure_v1.CONDA_FILE: conda})
    variables = azure_v1.load(folder).definition.environment_variables
    assert variables == {"FROM_CONDA": "a", "MY_FLAG": "1"}


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("2", "2"), (2, "2")])
def test_version_is_a_string(raw: Any, expected: str | None, tmp_path: Path) -> None:
    assert azure_v1.load(write_json(tmp_path, sdk_json(version=raw))).definition.version == expected


def test_interpreter_path_counts_only_when_user_managed(tmp_path: Path) -> None:
    data = sdk_json(python={"userManagedDependencies": False, "interpreterPath": "/opt/py"})
    assert (
        azure_v1.load(write_json(tmp_path / "a", data)).definition.python.interpreter_path is None
    )
    data = sdk_json(python={"userManagedDependencies": True, "interpreterPath": "python"})
    python = azure_v1.load(write_json(tmp_path / "b", data)).definition.python
    assert python.user_managed and python.interpreter_path is None


def test_the_json_file_itself_may_be_named(tmp_path: Path) -> None:
    folder = write_json(tmp_path, sdk_json())
    assert azure_v1.load(folder / azure_v1.DEFINITION_FILE).definition.name == "conda-pip"


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (sdk_json(environmentVariables=["A=1"]), "`environmentVariables` in "),
        (sdk_json(environmentVariables={"A": {"x": 1}}), "`environmentVariables.A` in "),
        (sdk_json(python={"userManagedDependencies": "false"}), "`python.userManagedDependencies`"),
        (sdk_json(python="conda"), "`python` in "),
        (sdk_json(version=True), "`version` in "),
        (sdk_json(spark={"precachePackages": "no"}), "`spark.precachePackages` in "),
        (sdk_json(docker={"baseImage": ["a"]}), "`docker.baseImage` in "),
        (sdk_json(name="bad name!"), "`name` in "),
        (sdk_json(name=None), "`name` in "),
        ({}, "`name` in "),
        ({"name": "registered", "version": "3"}, "only `name` and `version`"),
        (sdk_json(environmentVariables={"1BAD": "x"}), "`environment_variables` in "),
    ],
)
def test_wrong_types_name_the_field(data: dict[str, Any], expected: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.load(write_json(tmp_path, data))
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_a_wrong_bool_says_what_to_write(tmp_path: Path) -> None:
    data = sdk_json(python={"userManagedDependencies": "false"})
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.load(write_json(tmp_path, data))
    assert caught.value.message == (
        f"`python.userManagedDependencies` in {tmp_path / azure_v1.DEFINITION_FILE} must be "
        "true or false (no quotes), not a string"
    )


def test_missing_definition_file_suggests_scaffold(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.load(tmp_path)
    assert azure_v1.DEFINITION_FILE in caught.value.message
    assert "`kiln env scaffold --format azure-v1`" in caught.value.message


def test_malformed_and_non_object_json(tmp_path: Path) -> None:
    (tmp_path / azure_v1.DEFINITION_FILE).write_text('{\n  "name": "x",\n  oops\n}')
    with pytest.raises(InvalidDefinition, match="not valid JSON at line 3, column 3"):
        azure_v1.load(tmp_path)
    (tmp_path / azure_v1.DEFINITION_FILE).write_text("[1, 2]")
    with pytest.raises(InvalidDefinition, match="must hold a mapping"):
        azure_v1.load(tmp_path)


def test_bad_conda_file_names_the_file(tmp_path: Path) -> None:
    folder = write_json(tmp_path, sdk_json(), **{azure_v1.CONDA_FILE: "dependencies: 3\n"})
    with pytest.raises(InvalidDefinition, match=azure_v1.CONDA_FILE):
        azure_v1.load(folder)


# --- writing -----------------------------------------------------------------------------------

FULL = EnvironmentDefinition.model_validate(
    {
        "name": "full",
        "version": "4",
        "python": {
            "version": "3.11",
            "conda": {"channels": ["conda-forge"], "packages": ["numpy=1.26", "pip"]},
            "pip": {
                "packages": ["requests==2.31.0", "pandas[excel]>=2"],
                "index_url": "https://pkgs.example/simple",
                "extra_index_urls": ["https://extra.example/simple"],
                "find_links": ["https://links.example/"],
                "pre": True,
            },
        },
        "environment_variables": {"MY_FLAG": "1", "OTHER": "two words"},
        "docker": {
            "base_image": "python:3.11-slim",
            "platform": {"os": "linux", "architecture": "arm64"},
        },
        "spark": {
            "repositories": ["https://repo.example/maven"],
            "precache_packages": False,
            "packages": [{"group": "g", "artifact": "a", "version": "1.0"}],
        },
        "inferencing_stack_version": "latest",
    }
)
DOCKERFILE_ONLY = EnvironmentDefinition.model_validate(
    {
        "name": "dockerfile-only",
        "python": {"user_managed": True, "interpreter_path": "/opt/venv/bin/python"},
        "docker": {
            "dockerfile": "FROM ubuntu:22.04\nRUN echo hi",
            "enabled": True,
            "shm_size": "16g",
            "arguments": ["--cap-add=SYS_PTRACE", "--ulimit", "memlock=-1"],
        },
        "asset_id": "azureml://locations/westeurope/workspaceId/0000/environments/dockerfile-only/versions/3",
    }
)
PRIVATE = EnvironmentDefinition.model_validate(
    {
        "name": "private",
        "python": {"version": "3.10"},
        "docker": {
            "base_image": "private.example/img:2",
            "base_image_registry": {
                "address": "private.example",
                "username": "bob",
                "password": "${REG_PASS}",
            },
            "platform": {"os": "windows"},
        },
    }
)
NO_PYTHON_VERSION = EnvironmentDefinition.model_validate(
    {"name": "no-python-version", "python": {"pip": {"packages": ["attrs"]}}}
)
BARE = EnvironmentDefinition(name="bare")
EXAMPLES = [FULL, DOCKERFILE_ONLY, PRIVATE, NO_PYTHON_VERSION, BARE]


@pytest.mark.parametrize("definition", EXAMPLES, ids=lambda d: d.name)
def test_save_then_load_is_the_identity(definition: EnvironmentDefinition, tmp_path: Path) -> None:
    assert round_trip(definition, tmp_path) == definition


def test_written_files(tmp_path: Path) -> None:
    written = azure_v1.save(FULL, tmp_path)
    assert sorted(p.name for p in written) == [azure_v1.DEFINITION_FILE, azure_v1.CONDA_FILE]
    text = (tmp_path / azure_v1.DEFINITION_FILE).read_text()
    assert text.startswith('{\n    "name": "full",\n    "version": "4",') and text.endswith("\n}")
    docker = json.loads(text)["docker"]
    assert docker["platform"] == {"os": "Linux", "architecture": "arm64"}
    assert docker["baseDockerfile"] is None
    conda = (tmp_path / azure_v1.CONDA_FILE).read_text()
    assert conda.startswith("name: project_environment\n")
    assert "- --index-url https://pkgs.example/simple\n" in conda

    folder = tmp_path / "dockerfile"
    azure_v1.save(DOCKERFILE_ONLY, folder)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [azure_v1.DOCKERFILE, azure_v1.DEFINITION_FILE]  # no conda file
    assert (folder / azure_v1.DOCKERFILE).read_text() == "FROM ubuntu:22.04\nRUN echo hi\n"
    data = json.loads((folder / azure_v1.DEFINITION_FILE).read_text())
    docker = data["docker"]
    assert "baseDockerfile" not in docker  # as save_to_directory does
    assert (docker["enabled"], docker["shmSize"]) == (True, "16g")
    assert docker["arguments"] == ["--cap-add=SYS_PTRACE", "--ulimit", "memlock=-1"]
    assert data["assetId"] == DOCKERFILE_ONLY.asset_id


def test_saving_again_removes_files_the_new_definition_does_not_have(tmp_path: Path) -> None:
    from kiln.formats.dispatch import save_definition

    save_definition(FULL, tmp_path, "azure-v1")
    save_definition(DOCKERFILE_ONLY, tmp_path, "azure-v1", overwrite=True)
    save_definition(BARE, tmp_path, "azure-v1", overwrite=True)
    assert azure_v1.load(tmp_path).definition == BARE
    assert [p.name for p in tmp_path.iterdir()] == [azure_v1.DEFINITION_FILE]


def test_fields_without_a_v1_place_are_not_written(tmp_path: Path) -> None:
    described = FULL.model_copy(
        update={
            "description": "d",
            "tags": {"team": "ml"},
            "inference_config": {"scoring_route": None},
        }
    )
    assert round_trip(described, tmp_path) == FULL


@pytest.mark.parametrize(
    ("docker", "pip", "field"),
    [
        ({"build_context": "ctx"}, {}, "`docker.build_context`"),
        ({}, {"constraints": ["urllib3<2"]}, "`python.pip.constraints`"),
    ],
)
def test_what_v1_cannot_express_is_refused(
    docker: dict[str, Any], pip: dict[str, Any], field: str, tmp_path: Path
) -> None:
    definition = EnvironmentDefinition.model_validate(
        {"name": "x", "docker": docker, "python": {"pip": pip}}
    )
    with pytest.raises(InvalidDefinition) as caught:
        azure_v1.save(definition, tmp_path)
    assert caught.value.message.startswith(field)
    assert list(tmp_path.iterdir()) == []


def test_local_wheels_are_hashed_by_content(tmp_path: Path) -> None:
    wheel = "./wheels/pkg-1.0-py3-none-any.whl"
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    definition = EnvironmentDefinition.model_validate(
        {"name": "wheel", "python": {"version": "3.11", "pip": {"packages": [wheel]}}}
    )
    definition = resolve_local_inputs(definition, tmp_path)
    loaded = round_trip(definition, tmp_path)
    assert loaded == definition and len(loaded.python.pip.file_digests[wheel]) == 64


# --- property: parse -> write -> parse is the identity -------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
_PIP = [
    "requests==2.31.0",
    "pandas[excel]>=2",
    "numpy",
    "attrs; python_version >= '3.8'",
    "pkg @ https://example.com/pkg-1.0.tar.gz",
    "torch==2.3.0 --hash=sha256:" + "a" * 64,
]
_CONDA = [
    "numpy=1.26",
    "scikit-learn",
    "conda-forge::scipy>=1.11",
    "libgcc-ng 13.2.0",
    "openssl=3.*",
]
_URLS = ["https://pkgs.example/simple", "https://user:${TOKEN}@private.example/simple"]
_LINES = ["RUN echo hi", "ENV A=1", "  RUN   spaced  ", "", "# comment"]


def _maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.sampled_from(values)


def _lists(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=3, unique=True)


@st.composite
def _docker(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from(["none", "image", "dockerfile"]))
    docker: dict[str, Any] = {
        "base_image": "python:3.11-slim" if source == "image" else None,
        "dockerfile": "\n".join(["FROM ubuntu:22.04", *draw(st.lists(st.sampled_from(_LINES)))])
        if source == "dockerfile"
        else None,
        "platform": draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "os": st.sampled_from(["linux", "windows"]),
                    "architecture": st.sampled_from(["amd64", "arm64"]),
                }
            )
        ),
    }
    if draw(st.booleans()):
        docker["base_image_registry"] = {
            "address": "r.example",
            "username": draw(_maybe(["bob"])),
            "password": draw(_maybe(["${REG_PASS}"])),
        }
    return docker


@st.composite
def definitions(draw: st.DrawFn) -> EnvironmentDefinition:
    pip = {
        "packages": draw(_lists(_PIP)),
        "index_url": draw(_maybe(_URLS)),
        "extra_index_urls": draw(_lists(_URLS)),
        "find_links": draw(_lists(_URLS)),
        "pre": draw(st.booleans()),
    }
    conda = draw(_lists(_CONDA))
    if conda and (
        pip["packages"]
        or pip["index_url"]
        or pip["extra_index_urls"]
        or pip["find_links"]
        or pip["pre"]
    ):
        conda.append("pip")  # conda_env's normal form: a pip sub-list comes with conda's pip
    user_managed = draw(st.booleans())
    data = {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,15}", fullmatch=True)),
        "version": draw(_maybe(["1", "2.0", "v3"])),
        "python": {
            "version": draw(_maybe(["3", "3.10", "3.11.7"])),
            "conda": {
                "channels": draw(_lists(["conda-forge", "anaconda", "nvidia"])),
                "packages": conda,
            },
            "pip": pip,
            "user_managed": user_managed,
            "interpreter_path": draw(_maybe(["/opt/venv/bin/python"])) if user_managed else None,
        },
        "environment_variables": draw(
            st.dictionaries(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), _TEXT, max_size=3
            )
        ),
        "docker": draw(_docker()),
        "spark": {
            "repositories": draw(_lists(["https://repo.example/maven"])),
            "packages": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "group": st.just("g"),
                            "artifact": st.sampled_from(["a", "b"]),
                            "version": st.just("1.0"),
                        }
                    ),
                    max_size=2,
                )
            ),
            "precache_packages": draw(st.booleans()),
        },
        "inferencing_stack_version": draw(_maybe(["latest", "1.2"])),
    }
    return EnvironmentDefinition.model_validate(data)


@settings(max_examples=50, deadline=None)
@given(definition=definitions())
def test_parse_write_parse_is_the_identity(definition: EnvironmentDefinition) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = round_trip(definition, Path(tmp) / "first")
        second = round_trip(first, Path(tmp) / "second")
    assert second == first
    assert first == definition
    assert build_hash(first) == build_hash(definition)


# --- the real azureml-core -----------------------------------------------------------------------

SUMMARY = r"""
import json, os, sys
from azureml.core import Environment

def summary(env):
    deps, docker, spark = env.python.conda_dependencies, env.docker, env.spark
    registry, platform = docker.base_image_registry, docker.platform
    return {
        "name": env.name, "version": env.version,
        "python_version": deps.get_python_version() if deps else None,
        "channels": list(deps.conda_channels) if deps else [],
        "conda_packages": [p for p in deps.conda_packages if not p.startswith("python=")]
        if deps else [],
        "pip_packages": list(deps.pip_packages) if deps else [],
        "pip_options": list(deps.pip_options) if deps else [],
        "base_image": docker.base_image, "dockerfile": docker.base_dockerfile,
        "registry": [registry.address, registry.username, registry.password] if registry else None,
        "env_vars": env.environment_variables,
        "user_managed": env.python.user_managed_dependencies,
        "interpreter_path": env.python.interpreter_path,
        "spark": [spark.repositories, [[p.group, p.artifact, p.version] for p in spark.packages],
                  spark.precache_packages],
        "inferencing_stack_version": env.inferencing_stack_version,
        "platform": [platform.os, platform.architecture] if platform else None,
        "run": [docker.enabled, docker.shm_size, docker.arguments],
        "asset_id": env.asset_id,
    }

result = {}
for folder in sys.argv[2:]:
    env = Environment.load_from_directory(folder)
    result[folder] = {"summary": summary(env), "resave_error": None}
    try:
        env.save_to_directory(os.path.join(sys.argv[1], os.path.basename(folder)))
    except Exception as exc:
        result[folder]["resave_error"] = str(exc)
print(json.dumps(result))
"""

CREATE = r"""
import os, sys
from azureml.core import Environment
from azureml.core.environment import DockerBuildContext, SparkPackage

out = sys.argv[1]
conda = os.path.join(out, "env.yml")
with open(conda, "w") as handle:
    handle.write("name: x\nchannels: [conda-forge]\nvariables: {CONDA_VAR: v}\n"
                 "dependencies: [python=3.11, numpy=1.26, pip, {pip: [requests==2.31.0]}]\n")
requirements = os.path.join(out, "requirements.txt")
with open(requirements, "w") as handle:
    handle.write("numpy==1.26.4\n# a comment\n--extra-index-url https://x.example/simple\nattrs\n")

envs = [
    Environment.from_conda_specification("from-conda", conda),
    Environment.from_pip_requirements("from-pip", requirements),
    Environment.from_dockerfile("from-dockerfile", "FROM ubuntu:22.04\nRUN echo hi\n",
                                conda_specification=conda),
]
env = Environment("private")
env.docker.base_image = "private.example/img:2"
env.docker.base_image_registry.address = "private.example"
env.docker.base_image_registry.username = "bob"
env.docker.base_image_registry.password = "s3cret-value"
envs.append(env)
env = Environment("user-managed")
env.version = "7"
env.python.user_managed_dependencies = True
env.python.interpreter_path = "/opt/venv/bin/python"
env.python.conda_dependencies = None
envs.append(env)
env = Environment("spark-arm")
env.spark.repositories = ["https://repo.example/maven"]
env.spark.packages = [SparkPackage("g", "a", "1.0")]
env.spark.precache_packages = False
env.docker.platform.architecture = "arm64"
env.inferencing_stack_version = "latest"
env.environment_variables = {"A": "1"}
envs.append(env)
env = Environment("run-settings")
env.docker.enabled = True
env.docker.shm_size = "8g"
env.docker.arguments = ["--cap-add=SYS_PTRACE"]
env.asset_id = "azureml://locations/x/workspaceId/y/environments/run-settings/versions/1"
envs.append(env)
env = Environment("git-context")
env.docker.build_context = DockerBuildContext(DockerBuildContext.LocationType.Git,
                                              "https://github.com/x/y.git", "Dockerfile")
envs.append(env)
for env in envs:
    env.save_to_directory(os.path.join(out, env.name))
"""


@pytest.fixture(scope="session")
def azureml_python() -> Path:
    """A venv with azureml-core, built once and reused across runs (and xdist workers)."""
    return cached_venv(AZUREML_CORE, "azureml.core")


def _sdk_view(definition: EnvironmentDefinition) -> dict[str, Any]:
    """What azureml-core should report for a definition Kiln wrote."""
    python, docker, spark = definition.python, definition.docker, definition.spark
    pip = python.pip
    options = [f"--index-url {pip.index_url}"] if pip.index_url else []
    options += [f"--extra-index-url {u}" for u in pip.extra_index_urls]
    options += [f"--find-links {u}" for u in pip.find_links] + (["--pre"] if pip.pre else [])
    conda = list(python.conda.packages)
    if (options or pip.packages) and "pip" not in conda:
        conda.append("pip")
    registry = docker.base_image_registry
    return {
        "name": definition.name,
        "version": definition.version,
        "python_version": python.version,
        "channels": python.conda.channels,
        "conda_packages": conda,
        "pip_packages": pip.packages,
        "pip_options": options,
        "base_image": docker.base_image,
        "dockerfile": f"{docker.dockerfile}\n" if docker.dockerfile else None,
        "registry": [registry.address, registry.username, registry.password]
        if registry
        else [None, None, None],
        "env_vars": definition.environment_variables,
        "user_managed": python.user_managed,
        "interpreter_path": python.interpreter_path or "python",
        "spark": [
            spark.repositories,
            [[p.group, p.artifact, p.version] for p in spark.packages],
            spark.precache_packages,
        ],
        "inferencing_stack_version": definition.inferencing_stack_version,
        "platform": [docker.platform.os.capitalize(), docker.platform.architecture]
        if docker.platform
        else None,
        "run": [docker.enabled, docker.shm_size or "2g", docker.arguments],
        "asset_id": definition.asset_id,
    }


@pytest.mark.azureml
def test_azureml_core_reads_what_kiln_writes(azureml_python: Path, tmp_path: Path) -> None:
    folders = {d.name: tmp_path / "kiln" / d.name for d in EXAMPLES}
    for definition in EXAMPLES:
        azure_v1.save(definition, folders[definition.name])
    resaved = tmp_path / "sdk"
    resaved.mkdir()
    output = run_or_fail(
        [str(azureml_python), "-c", SUMMARY, str(resaved), *map(str, folders.values())]
    )
    results = json.loads(output.splitlines()[-1])
    for definition in EXAMPLES:
        result = results[str(folders[definition.name])]
        assert result["summary"] == _sdk_view(definition), definition.name
        if definition is NO_PYTHON_VERSION:  # the SDK loads a conda file without python ...
            assert "Python package is missing." in result["resave_error"]  # ... cannot save it
            continue
        assert result["resave_error"] is None
        assert azure_v1.load(resaved / definition.name).definition == definition


@pytest.mark.azureml
def test_kiln_reads_what_azureml_core_writes(azureml_python: Path, tmp_path: Path) -> None:
    run_or_fail([str(azureml_python), "-c", CREATE, str(tmp_path)])
    from_conda = azure_v1.load(tmp_path / "from-conda").definition
    assert from_conda.python.version == "3.11"
    assert from_conda.python.conda.channels == ["conda-forge"]
    assert from_conda.python.conda.packages == ["numpy=1.26", "pip"]
    assert from_conda.python.pip.packages == ["requests==2.31.0"]
    assert from_conda.environment_variables == {
        "CONDA_VAR": "v",
        "EXAMPLE_ENV_VAR": "EXAMPLE_VALUE",
    }
    assert from_conda.docker.base_image == DEFAULT_IMAGE

    from_pip = azure_v1.load(tmp_path / "from-pip")
    assert from_pip.definition.python.pip.packages == ["numpy==1.26.4", "attrs"]
    assert from_pip.definition.python.pip.extra_index_urls == ["https://x.example/simple"]
    assert any("# a comment" in w for w in from_pip.warnings)

    from_dockerfile = azure_v1.load(tmp_path / "from-dockerfile").definition
    assert from_dockerfile.docker.dockerfile == "FROM ubuntu:22.04\nRUN echo hi"
    azure_v1.save(from_dockerfile, tmp_path / "from-dockerfile-again")
    written = (tmp_path / "from-dockerfile-again" / azure_v1.DOCKERFILE).read_bytes()
    assert written == (tmp_path / "from-dockerfile" / azure_v1.DOCKERFILE).read_bytes()
    assert from_dockerfile.docker.base_image is None
    assert from_dockerfile.python.pip.packages == ["requests==2.31.0"]

    private = azure_v1.load(tmp_path / "private")
    registry = private.definition.docker.base_image_registry
    assert registry is not None and (registry.address, registry.username) == (
        "private.example",
        "bob",
    )
    assert registry.password is None
    assert [w for w in private.warnings if "password" in w and "s3cret" not in w]

    user_managed = azure_v1.load(tmp_path / "user-managed").definition
    assert user_managed.version == "7" and user_managed.python.user_managed
    assert user_managed.python.interpreter_path == "/opt/venv/bin/python"
    assert user_managed.python.version is None
    assert not (tmp_path / "user-managed" / azure_v1.CONDA_FILE).exists()

    spark = azure_v1.load(tmp_path / "spark-arm").definition
    assert [(p.group, p.artifact, p.version) for p in spark.spark.packages] == [("g", "a", "1.0")]
    assert spark.spark.repositories == ["https://repo.example/maven"]
    assert spark.spark.precache_packages is False
    assert spark.docker.platform is not None and spark.docker.platform.architecture == "arm64"
    assert spark.inferencing_stack_version == "latest"
    assert spark.environment_variables == {"A": "1"}

    run_settings = azure_v1.load(tmp_path / "run-settings").definition.docker
    assert (run_settings.enabled, run_settings.shm_size) == (True, "8g")
    assert run_settings.arguments == ["--cap-add=SYS_PTRACE"]
    assert azure_v1.load(tmp_path / "run-settings").definition.asset_id == (
        "azureml://locations/x/workspaceId/y/environments/run-settings/versions/1"
    )

    # The SDK's git context, pointed at a repository of this machine (github.com is not
    # reachable here): read as Kiln's git build context, its ref pinned to a commit.
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "Dockerfile").write_text("FROM scratch\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    written = tmp_path / "git-context" / azure_v1.DEFINITION_FILE
    written.write_text(written.read_text().replace("https://github.com/x/y.git", repo.as_uri()))
    docker = azure_v1.load(tmp_path / "git-context").definition.docker
    assert (docker.build_context, docker.dockerfile_path) == (repo.as_uri(), "Dockerfile")
    assert docker.build_context_commit == git("rev-parse", "HEAD", cwd=repo)
