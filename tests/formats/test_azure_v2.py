"""Azure ML v2 environment YAML: the documented layouts load, unknown keys and conflicts are
errors as in Azure, save -> load keeps the build, and what v2 cannot hold is named."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_hash
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.formats import azure_v2
from kiln.formats.dispatch import save_definition

SCHEMA = "https://azuremlschemas.azureedge.net/latest/environment.schema.json"
IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"

CONDA = """\
name: pydata
channels:
  - conda-forge
dependencies:
  - python=3.10
  - numpy=1.26.4
  - pip
  - pip:
    - --extra-index-url https://pkgs.example.com/simple
    - scikit-learn==1.4.2
    - pandas>=2.1
"""

ROUTES = """\
inference_config:
  liveness_route:
    port: 5001
    path: /
  readiness_route:
    port: 5001
    path: /ready
  scoring_route:
    port: 5001
    path: /score
"""

IMAGE_PLUS_CONDA = f"""\
$schema: {SCHEMA}
name: docker-image-plus-conda-example
version: "2.0"
description: Environment created from a Docker image plus Conda environment.
tags:
  team: ml
  tier: 1
image: {IMAGE}
conda_file: conda-yamls/pydata.yml
os_type: linux
{ROUTES}"""

BUILD = f"""\
$schema: {SCHEMA}
name: docker-context-example
version: "1"
build:
  path: docker-contexts/python-and-pip
  dockerfile_path: Dockerfile.cpu
"""


def write(folder: Path, text: str, name: str = "environment.yaml", **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for relative, content in extra.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    (folder / name).write_text(text)
    return folder / name


def error(path: Path) -> str:
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.load(path)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def add_build_context(folder: Path) -> Path:
    context = folder / "docker-contexts" / "python-and-pip"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile.cpu").write_text(
        "FROM python:3.11-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    )
    (context / "requirements.txt").write_text("numpy==1.26.4\n")
    return context


# --- the documented layouts ------------------------------------------------------------------


def test_image_plus_conda_file(tmp_path: Path) -> None:
    path = write(tmp_path, IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": CONDA})
    loaded = azure_v2.load(path)
    d = loaded.definition
    assert (d.name, d.version) == ("docker-image-plus-conda-example", "2.0")
    assert d.description == "Environment created from a Docker image plus Conda environment."
    assert d.tags == {"team": "ml", "tier": "1"}  # Azure keeps tag values as strings
    assert d.docker.base_image == IMAGE
    assert d.docker.platform is not None and d.docker.platform.os == "linux"
    assert d.python.version == "3.10"
    assert d.python.conda.channels == ["conda-forge"]
    assert d.python.conda.packages == ["numpy=1.26.4", "pip"]
    assert d.python.pip.packages == ["scikit-learn==1.4.2", "pandas>=2.1"]
    assert d.python.pip.extra_index_urls == ["https://pkgs.example.com/simple"]
    assert d.inference_config is not None
    routes = d.inference_config.model_dump()
    assert routes == {
        "liveness_route": {"path": "/", "port": 5001},
        "readiness_route": {"path": "/ready", "port": 5001},
        "scoring_route": {"path": "/score", "port": 5001},
    }
    assert loaded.files == (path,)


def test_an_inline_conda_mapping_is_the_same_as_a_conda_file(tmp_path: Path) -> None:
    from_file = azure_v2.load(
        write(tmp_path / "a", IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": CONDA})
    ).definition
    inline = yaml.safe_load(IMAGE_PLUS_CONDA)
    inline["conda_file"] = yaml.safe_load(CONDA)
    from_mapping = azure_v2.load(write(tmp_path / "b", yaml.safe_dump(inline))).definition
    assert from_mapping == from_file


def test_a_build_context_with_a_dockerfile_path(tmp_path: Path) -> None:
    path = write(tmp_path, BUILD)
    context = add_build_context(tmp_path)
    d = azure_v2.load(path).definition
    assert d.docker.build_context == "docker-contexts/python-and-pip"
    assert d.docker.dockerfile_path == "Dockerfile.cpu"
    assert d.docker.build_context_digest is not None
    assert d.docker.base_image is None
    first = build_hash(d)
    (context / "requirements.txt").write_text("numpy==2.0.0\n")
    assert build_hash(azure_v2.load(path).definition) != first


def test_conda_variables_become_environment_variables(tmp_path: Path) -> None:
    conda = CONDA + "variables:\n  OMP_NUM_THREADS: 4\n"
    path = write(tmp_path, IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": conda})
    assert azure_v2.load(path).definition.environment_variables == {"OMP_NUM_THREADS": "4"}


# --- errors ----------------------------------------------------------------------------------

ERRORS = {
    "unknown top-level key": (
        f"name: x\nimage: {IMAGE}\nenvironment_variables:\n  A: b\n",
        "unknown key `environment_variables` in {path}; valid keys: $schema, build, conda_file, "
        "datastore, description, image, inference_config, name, os_type, tags, version",
    ),
    "misspelt top-level key": (
        f"name: x\nimage: {IMAGE}\nconda_files: conda.yaml\n",
        "unknown key `conda_files` in {path}; did you mean `conda_file`?",
    ),
    "unknown key inside build": (
        "name: x\nbuild:\n  path: ctx\n  dockerfile: Dockerfile\n",
        "unknown key `build.dockerfile` in {path}; did you mean `dockerfile_path`?",
    ),
    "conda_file with build": (
        "name: x\nbuild:\n  path: ctx\nconda_file: conda.yaml\n",
        "`conda_file` goes with `image`, not `build`, in {path}; install packages in the "
        "Dockerfile or use image + conda_file",
    ),
    "image and build": (
        f"name: x\nimage: {IMAGE}\nbuild:\n  path: ctx\n",
        "`image` and `build` are both set in {path}; keep one of them",
    ),
    "build without a path": (
        "name: x\nbuild:\n  dockerfile_path: Dockerfile\n",
        "`build.path` is required in {path}",
    ),
    "build as text": ("name: x\nbuild: ctx\n", "`build` in {path} must be a mapping with `path`"),
    "missing name": (f"image: {IMAGE}\n", "`name` in {path}: is required"),
    "conda_file as a list": (
        f"name: x\nimage: {IMAGE}\nconda_file: [numpy]\n",
        "`conda_file` in {path} must be a file path or a mapping",
    ),
    "unknown key in an inline conda file": (
        f"name: x\nimage: {IMAGE}\nconda_file:\n  dependencies: [numpy]\n  packages: [x]\n",
        "unknown key `packages` in {path} conda_file; valid keys: channels, dependencies, name, "
        "prefix, variables",
    ),
    "bad os_type": (
        f"name: x\nimage: {IMAGE}\nos_type: macos\n",
        "`docker.platform.os` in {path}: Input should be 'linux' or 'windows'",
    ),
    "scoring route without a leading slash": (
        f"name: x\nimage: {IMAGE}\n{ROUTES.replace('/score', 'score')}",
        "`inference_config.scoring_route.path` in {path}: 'score' is not allowed: String should "
        "match pattern '^/'",
    ),
    "inference_config without a readiness route": (
        f"name: x\nimage: {IMAGE}\ninference_config:\n  liveness_route: {{path: /, port: 1}}\n"
        "  scoring_route: {path: /score, port: 1}\n",
        "`inference_config.readiness_route` is missing in {path}; Azure ML requires all of "
        "liveness_route, readiness_route, scoring_route: add it (path and port), e.g. "
        "readiness_route: {{path: /, port: 5001}}",
    ),
    "inference_config as a list": (
        f"name: x\nimage: {IMAGE}\ninference_config: [/score]\n",
        "`inference_config` in {path} must be a mapping of liveness_route, readiness_route, "
        "scoring_route",
    ),
    "unknown inference route": (
        f"name: x\nimage: {IMAGE}\ninference_config:\n  scoring: {{path: /score, port: 5001}}\n",
        "unknown key `inference_config.scoring` in {path}; did you mean `scoring_route`?",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_gives_one_line_naming_the_key(case: str, tmp_path: Path) -> None:
    text, expected = ERRORS[case]
    path = write(tmp_path, text)
    assert error(path) == expected.format(path=path)


def test_a_missing_conda_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"name: x\nimage: {IMAGE}\nconda_file: conda.yaml\n")
    assert error(path) == f"`conda_file`: {tmp_path / 'conda.yaml'} does not exist"


def test_a_conda_file_outside_the_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text(CONDA)
    path = write(tmp_path / "env", f"name: x\nimage: {IMAGE}\nconda_file: ../conda.yaml\n")
    assert error(path) == (
        f"`conda_file`: '../conda.yaml' points outside {path.parent.resolve()}; keep referenced "
        "files inside the definition's directory"
    )


@pytest.mark.parametrize("make", [None, "file"], ids=["missing", "a file"])
def test_a_missing_build_context_folder_is_reported_as_a_folder(
    make: str | None, tmp_path: Path
) -> None:
    path = write(tmp_path, "name: x\nbuild:\n  path: ctx\n")
    if make:
        (tmp_path / "ctx").write_text("FROM x\n")
    problem = "is not a folder" if make else "does not exist"
    assert error(path) == (
        f"`docker.build_context`: the folder {(tmp_path / 'ctx').resolve()} {problem}; create it "
        "with the Dockerfile inside, or point build_context (build.path) at the folder that "
        "holds it"
    )


def test_a_datastore_is_accepted_and_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, f"name: x\nimage: {IMAGE}\ndatastore: azureml:workspaceblobstore\n")
    loaded = azure_v2.load(path)
    assert (
        loaded.definition
        == azure_v2.load(write(tmp_path / "b", f"name: x\nimage: {IMAGE}\n")).definition
    )
    assert loaded.warnings == (
        f"`datastore` in {path} names where Azure ML uploads the build files; Kiln keeps them "
        "in its workspace's artifact store, so it is ignored (and not written back)",
    )


def test_a_missing_dockerfile_in_the_build_context_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbuild:\n  path: ctx\n")
    (tmp_path / "ctx").mkdir()
    assert error(path) == (
        f"`docker.dockerfile_path`: Dockerfile not found in {(tmp_path / 'ctx').resolve()}; add "
        "it or set dockerfile_path"
    )


# --- save ------------------------------------------------------------------------------------


def test_image_plus_conda_saves_and_loads_back(tmp_path: Path) -> None:
    original = azure_v2.load(
        write(tmp_path / "in", IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": CONDA})
    ).definition
    written = azure_v2.save(original, tmp_path / "out")
    assert sorted(p.name for p in written) == ["conda.yaml", "environment.yaml"]
    saved = yaml.safe_load((tmp_path / "out" / "environment.yaml").read_text())
    assert saved["$schema"] == SCHEMA
    assert saved["conda_file"] == "conda.yaml"
    again = azure_v2.load(tmp_path / "out" / "environment.yaml").definition
    assert again == original
    assert build_hash(again) == build_hash(original)


def test_a_build_context_saves_and_loads_back_with_the_same_build_hash(tmp_path: Path) -> None:
    source = tmp_path / "in"
    write(source, BUILD)
    add_build_context(source)
    original = azure_v2.load(source / "environment.yaml").definition
    save_definition(original, tmp_path / "out", "azure-v2", source_dir=source)
    saved = yaml.safe_load((tmp_path / "out" / "environment.yaml").read_text())
    assert saved["build"] == {
        "path": "docker-contexts/python-and-pip",
        "dockerfile_path": "Dockerfile.cpu",
    }
    again = azure_v2.load(tmp_path / "out" / "environment.yaml").definition
    assert again == original
    assert build_hash(again) == build_hash(original)


def test_dockerfile_text_saves_as_a_build_context(tmp_path: Path) -> None:
    text = "FROM python:3.11-slim\nRUN pip install numpy==1.26.4\n"
    definition = EnvironmentDefinition.model_validate(
        {"name": "inline", "docker": {"dockerfile": text, "platform": {"os": "linux"}}}
    )
    azure_v2.save(definition, tmp_path)
    saved = yaml.safe_load((tmp_path / "environment.yaml").read_text())
    assert saved["build"] == {"path": azure_v2.DOCKERFILE_CONTEXT}
    loaded = azure_v2.load(tmp_path / "environment.yaml").definition
    assert loaded.docker.dockerfile is None
    assert loaded.docker.build_context == azure_v2.DOCKERFILE_CONTEXT
    assert loaded.docker.build_context_digest is not None
    dockerfile = (tmp_path / loaded.docker.build_context / "Dockerfile").read_text()
    assert dockerfile == definition.docker.dockerfile == text.strip()  # the model strips text


def test_a_dockerfile_build_cannot_carry_conda_or_pip_packages(tmp_path: Path) -> None:
    definition = EnvironmentDefinition.model_validate(
        {"name": "x", "docker": {"dockerfile": "FROM x\n"}, "python": {"pip": {"packages": ["a"]}}}
    )
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.save(definition, tmp_path)
    assert str(caught.value) == (
        "Azure ML v2 cannot combine a Dockerfile build with conda/pip packages; save with "
        "--format kiln or azure-v1, or install the packages in the Dockerfile"
    )
    assert list(tmp_path.iterdir()) == []


def test_pip_options_without_packages_are_kept(tmp_path: Path) -> None:
    definition = EnvironmentDefinition.model_validate(
        {
            "name": "x",
            "docker": {"base_image": IMAGE},
            "python": {"pip": {"index_url": "https://pkgs.example.com/simple", "pre": True}},
        }
    )
    azure_v2.save(definition, tmp_path)
    assert azure_v2.load(tmp_path / "environment.yaml").definition == definition


def test_dropped_fields_names_what_v2_cannot_hold() -> None:
    definition = EnvironmentDefinition.model_validate(
        {
            "name": "x",
            "python": {
                "user_managed": True,
                "interpreter_path": "/opt/py/bin/python",
                "pip": {"packages": ["numpy"], "constraints": ["urllib3<3"]},
            },
            "environment_variables": {"A": "1"},
            "docker": {
                "base_image": IMAGE,
                "base_image_registry": {"address": "r.example", "password": "${PW}"},
                "platform": {"os": "linux", "architecture": "arm64"},
                "enabled": True,
                "shm_size": "8g",
                "arguments": ["--gpus", "all"],
            },
            "spark": {"packages": [{"group": "g", "artifact": "a", "version": "1"}]},
            "inferencing_stack_version": "latest",
            "asset_id": "azureml://x",
        }
    )
    assert azure_v2.dropped_fields(definition) == [
        "environment_variables",
        "python.user_managed",
        "python.interpreter_path",
        "python.pip.constraints",
        "spark",
        "inferencing_stack_version",
        "docker.base_image_registry",
        "docker.platform.architecture",
        "docker.enabled",
        "docker.shm_size",
        "docker.arguments",
        "asset_id",
    ]


def test_a_v2_definition_drops_nothing(tmp_path: Path) -> None:
    loaded = azure_v2.load(
        write(tmp_path, IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": CONDA})
    ).definition
    assert azure_v2.dropped_fields(loaded) == []


# --- parse -> write -> parse -----------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30).map(str.strip)
_PIP = ["numpy==1.26.4", "scikit-learn>=1.4", 'pandas[excel]<3 ; python_version >= "3.9"']
_CONDA = ["numpy", "numpy=1.26.4", "conda-forge::libgomp>=13"]
_URLS = ["https://pkgs.example.com/simple", "https://u:${TOKEN}@pkgs.example.com/simple/"]
_ROUTE = st.fixed_dictionaries(
    {"path": st.sampled_from(["/", "/score", "/health"]), "port": st.integers(1, 65535)}
)


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


@st.composite
def v2_definitions(draw: st.DrawFn) -> EnvironmentDefinition:
    """What v2 can express: an image (or nothing) with a conda file, or Dockerfile text alone."""
    pip = {
        "packages": draw(st.lists(st.sampled_from(_PIP), max_size=3)),
        "index_url": draw(_maybe(st.sampled_from(_URLS))),
        "extra_index_urls": draw(st.lists(st.sampled_from(_URLS), max_size=2)),
        "find_links": draw(st.lists(st.sampled_from(_URLS), max_size=1)),
        "pre": draw(st.booleans()),
    }
    conda = draw(st.lists(st.sampled_from(_CONDA), max_size=3))
    if conda and any(pip.values()):
        conda.append("pip")  # conda_env's normal form: a pip sub-list comes with conda's pip
    python = {
        "version": draw(_maybe(st.sampled_from(["3", "3.10", "3.11.7"]))),
        "conda": {
            "channels": draw(st.lists(st.sampled_from(["conda-forge", "nvidia"]))),
            "packages": conda,
        },
        "pip": pip,
    }
    source = draw(st.sampled_from(["none", "image", "dockerfile"]))
    docker: dict[str, Any] = {
        "platform": draw(
            _maybe(st.fixed_dictionaries({"os": st.sampled_from(["linux", "windows"])}))
        )
    }
    if source == "image":
        docker["base_image"] = IMAGE
    elif source == "dockerfile":
        docker["dockerfile"] = draw(st.sampled_from(["FROM ubuntu:22.04\n", "FROM x\nRUN true"]))
        python = {}  # v2 has no conda file beside a build
    return EnvironmentDefinition.model_validate(
        {
            "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,20}", fullmatch=True)),
            "version": draw(_maybe(st.sampled_from(["1", "2.0", "v3"]))),
            "description": draw(_maybe(_TEXT)),
            "tags": draw(st.dictionaries(_TEXT.filter(bool), _TEXT, max_size=3)),
            "python": python,
            "docker": docker,
            "inference_config": draw(
                _maybe(
                    st.fixed_dictionaries(
                        {
                            "liveness_route": _ROUTE,
                            "readiness_route": _ROUTE,
                            "scoring_route": _ROUTE,
                        }
                    )
                )
            ),
        }
    )


def _round_trip(
    definition: EnvironmentDefinition, folder: Path, source: Path | None = None
) -> EnvironmentDefinition:
    save_definition(definition, folder, "azure-v2", source_dir=source)  # copies a build context
    return azure_v2.load(folder / azure_v2.DEFAULT_FILE).definition


@settings(max_examples=60, deadline=None)
@given(definition=v2_definitions())
def test_parse_write_parse_is_the_identity(definition: EnvironmentDefinition) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = _round_trip(definition, Path(tmp) / "first")
        second = _round_trip(first, Path(tmp) / "second", source=Path(tmp) / "first")
    assert azure_v2.dropped_fields(definition) == []
    assert first == second
    assert build_hash(first) == build_hash(second)
    if definition.docker.dockerfile is None:
        assert first == definition
        assert build_hash(first) == build_hash(definition)
    else:
        # v2 has no Dockerfile text: it is saved as a build context folder holding it, so the
        # first trip turns `dockerfile` into `build_context` (with the same Dockerfile inside).
        expected = definition.model_copy(deep=True)
        expected.docker.dockerfile = None
        expected.docker.build_context = azure_v2.DOCKERFILE_CONTEXT
        expected.docker.build_context_digest = first.docker.build_context_digest
        assert first == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ntags: [a, b]\nimage: i:1\n", "`tags` in {path} must be a mapping"),
        (
            "name: x\nversion: 1.10\nimage: i:1\n",
            '`version` in {path} must be a string; quote it, e.g. version: "1.1"',
        ),
    ],
)
def test_types_yaml_would_change_are_refused(tmp_path: Path, text: str, message: str) -> None:
    from kiln.errors import InvalidDefinition

    path = tmp_path / "environment.yaml"
    path.write_text(text)
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.load(path)
    assert caught.value.message.startswith(message.format(path=path))


def test_a_partial_inference_config_is_never_written_back(tmp_path: Path) -> None:
    """Kiln YAML may hold one route; Azure ML v2 rejects such a file, so saving says why."""
    definition = EnvironmentDefinition.model_validate(
        {
            "name": "serve",
            "docker": {"base_image": IMAGE},
            "inference_config": {"scoring_route": {"path": "/score", "port": 5001}},
        }
    )
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.save(definition, tmp_path / "out")
    assert str(caught.value) == (
        "`inference_config.liveness_route` is missing in the definition of serve; Azure ML "
        "requires all of liveness_route, readiness_route, scoring_route: add it (path and port), "
        "e.g. liveness_route: {path: /, port: 5001}"
    )
    assert not (tmp_path / "out").exists()


# --- a definition without an image -----------------------------------------------------------

PIP_ONLY = EnvironmentDefinition.model_validate(
    {"name": "plain", "version": "1", "python": {"version": "3.11", "pip": {"packages": ["six"]}}}
)


def test_no_image_gets_the_workspace_default_and_says_so(tmp_path: Path) -> None:
    completed, notes = azure_v2.complete(PIP_ONLY, "registry.example/base:1")
    assert completed.docker.base_image == "registry.example/base:1"
    assert notes == [
        "plain:1 names no base image and Azure ML v2 requires one: the file names `image: "
        "registry.example/base:1`, the workspace's default base image; set docker.base_image "
        "to choose another"
    ]
    azure_v2.save(completed, tmp_path)
    saved = yaml.safe_load((tmp_path / azure_v2.DEFAULT_FILE).read_text())
    assert (saved["image"], saved["conda_file"]) == ("registry.example/base:1", "conda.yaml")


def test_no_image_and_no_workspace_default_gets_azures_default() -> None:
    completed, notes = azure_v2.complete(PIP_ONLY, None)
    assert completed.docker.base_image == azure_v2.DEFAULT_IMAGE
    assert "Azure ML's default CPU image" in notes[0]


@pytest.mark.parametrize(
    "docker", [{"base_image": IMAGE}, {"dockerfile": "FROM x\n"}], ids=["image", "dockerfile"]
)
def test_an_image_or_a_build_is_left_as_it_is(docker: dict[str, str]) -> None:
    definition = EnvironmentDefinition.model_validate({"name": "built", "docker": docker})
    assert azure_v2.complete(definition, "registry.example/base:1") == (definition, [])


# --- the real azure-ai-ml --------------------------------------------------------------------

AZURE_AI_ML = "azure-ai-ml==1.35.2"
ACCEPTS = r"""
import json, sys
from azure.ai.ml import load_environment

result = {}
for path in sys.argv[1:]:
    try:
        load_environment(path)._to_rest_object()  # the schema, then what the service is sent
        result[path] = None
    except Exception as exc:
        result[path] = " ".join(str(exc).split())
print(json.dumps(result))
"""


@pytest.mark.azureml
def test_azure_ai_ml_accepts_what_kiln_writes_and_refuses_what_kiln_refuses(
    tmp_path: Path,
) -> None:
    from kiln.formats.dispatch import completed
    from kilntesting.cli import cached_venv, run_or_fail

    python = cached_venv(AZURE_AI_ML, "azure.ai.ml")
    source = tmp_path / "in"
    add_build_context(source)
    written = {
        "image-conda-routes": azure_v2.load(
            write(source, IMAGE_PLUS_CONDA, **{"conda-yamls/pydata.yml": CONDA})
        ).definition,
        "build": azure_v2.load(write(source, BUILD, name="build.yaml")).definition,
        "no-image": completed(PIP_ONLY, "azure-v2")[0],
        "datastore": azure_v2.load(
            write(tmp_path / "ds", f"name: d\nimage: {IMAGE}\ndatastore: azureml:blobs\n")
        ).definition,
    }
    paths = []
    for name, definition in written.items():
        save_definition(definition, tmp_path / name, "azure-v2", source_dir=source)
        paths.append(str(tmp_path / name / azure_v2.DEFAULT_FILE))
    refused = {
        "one-route": f"name: r\nimage: {IMAGE}\ninference_config:\n  scoring_route: "
        "{path: /score, port: 5001}\n",
        "no-image": "name: n\nconda_file: {dependencies: [python=3.11]}\n",
    }
    for name, text in refused.items():
        paths.append(str(write(tmp_path / f"refused-{name}", text)))
    results = json.loads(run_or_fail([str(python), "-c", ACCEPTS, *paths]).splitlines()[-1])
    assert [results[p] for p in paths[: len(written)]] == [None] * len(written)
    one_route, no_image = (results[p] for p in paths[len(written) :])
    assert "liveness_route" in one_route and "readiness_route" in one_route
    assert "Docker image or Dockerfile is required" in no_image
    with pytest.raises(InvalidDefinition, match="liveness_route"):
        azure_v2.load(Path(paths[len(written)]))
