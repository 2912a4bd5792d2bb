"""Every definition file format, fuzzed: Kiln YAML, Azure ML v2 YAML (with its conda file),
conda environment.yml, and Azure ML v1 JSON (with its conda_dependencies.yml). Whatever the
bytes, loading parses or raises Kiln's own error (exit 2, one line), nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.formats import azure_v1, azure_v2, conda_env, kiln_yaml
from kiln.formats.dispatch import load_path
from kilntesting.fuzz import as_json, as_yaml, documents, folder, parses_or_refuses, shaped, write

FUZZ = settings.get_profile("kiln-fuzz")
REPO = Path(__file__).resolve().parents[2]
V1_FIXTURES = REPO / "tests" / "fixtures" / "azureml_v1"

KILN_SEEDS = [
    'name: train\nversion: "2"\ndescription: d\ntags: {team: a}\npython:\n  version: "3.11"\n'
    "  pip:\n    index_url: https://pypi.example/simple\n    packages: [numpy==2.4.6, ./w.whl]\n"
    "    constraints: [six<2]\n  conda:\n    channels: [conda-forge]\n    packages: [python=3.11]\n"
    "environment_variables: {OMP_NUM_THREADS: '1'}\ndocker: {base_image: python:3.11}\n",
    "name: x\npython: {user_managed: true, interpreter_path: /usr/bin/python3}\n"
    "spark: {packages: [{group: g, artifact: a, version: '1'}]}\n",
]
V2_SEEDS = [
    "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
    "name: v2\nversion: '1'\nimage: mcr.microsoft.com/azureml/base:1\nconda_file: conda.yaml\n"
    "tags: {a: b}\ninference_config:\n  liveness_route: {port: 5001, path: /}\n"
    "  readiness_route: {port: 5001, path: /}\n  scoring_route: {port: 5001, path: /score}\n",
    "name: v2b\nbuild:\n  path: docker-context\n  dockerfile_path: Dockerfile\nos_type: linux\n",
]
CONDA_SEEDS = [
    "name: c\nchannels: [conda-forge, defaults]\ndependencies:\n- python=3.11\n- numpy>=1.26\n"
    "- pip\n- pip:\n  - --extra-index-url https://pypi.example/simple\n  - requests==2.31.0\n"
    "variables: {A: '1'}\n",
    "dependencies: [python=3.10, {pip: [six]}]\n",
]
# The git build context's repository is a folder that does not exist (the fixture's is on
# github.com): reading it asks git, which fails at once, an unreachable remote (exit 5).
V1_SEEDS = [
    (V1_FIXTURES / name / "azureml_environment.json")
    .read_text()
    .replace("https://github.com/example/repo.git", "file:///nonexistent/kiln-fuzz/repo.git")
    for name in sorted(p.name for p in V1_FIXTURES.iterdir())
    if (V1_FIXTURES / name / "azureml_environment.json").is_file()
]

KILN_KEYS = ["name", "version", "description", "tags", "python", "docker", "spark"]
KILN_KEYS += ["environment_variables", "inferencing_stack_version", "inference_config"]
KILN_NESTED = {
    "python": ["version", "conda", "pip", "user_managed", "interpreter_path"],
    "docker": ["base_image", "base_dockerfile", "build_context", "dockerfile_path", "platform"],
}
V2_KEYS = ["$schema", "name", "version", "description", "tags", "image", "conda_file"]
V2_KEYS += ["build", "os_type", "inference_config", "datastore"]
CONDA_KEYS = ["name", "channels", "dependencies", "prefix", "variables"]
V1_KEYS = ["name", "version", "python", "docker", "spark", "environmentVariables"]
V1_KEYS += ["inferencingStackVersion", "databricks", "r", "assetId"]
V1_NESTED = {
    "python": [
        *("userManagedDependencies", "interpreterPath", "condaDependencies"),
        *("condaDependenciesFile", "baseCondaEnvironment"),
    ],
    "docker": [
        *("enabled", "baseImage", "baseDockerfile", "buildContext", "arguments"),
        *("baseImageRegistry", "platform", "shmSize"),
    ],
}

kiln_texts = documents(KILN_SEEDS, shaped(KILN_KEYS, KILN_NESTED), as_yaml)
v2_texts = documents(V2_SEEDS, shaped(V2_KEYS), as_yaml)
conda_texts = documents(CONDA_SEEDS, shaped(CONDA_KEYS), as_yaml)
v1_texts = documents(V1_SEEDS, shaped(V1_KEYS, V1_NESTED), as_json)


@FUZZ
@given(kiln_texts)
def test_kiln_yaml(text: str | bytes) -> None:
    with folder() as root:
        write(root / "w.whl", b"PK")
        parses_or_refuses(lambda: kiln_yaml.load(write(root / "kiln.yaml", text)))


@FUZZ
@given(v2_texts, st.none() | conda_texts)
def test_azure_v2_yaml_and_its_conda_file(text: str | bytes, conda: str | bytes | None) -> None:
    with folder() as root:
        if conda is not None:
            write(root / "conda.yaml", conda)
        write(root / "docker-context" / "Dockerfile", "FROM python:3.11\n")
        parses_or_refuses(lambda: azure_v2.load(write(root / "environment.yaml", text)))


@FUZZ
@given(conda_texts)
def test_conda_environment_yml(text: str | bytes) -> None:
    with folder() as root:
        parses_or_refuses(lambda: conda_env.load(write(root / "environment.yml", text)))


@FUZZ
@given(v1_texts, st.none() | conda_texts)
def test_azure_v1_json_and_its_conda_file(text: str | bytes, conda: str | bytes | None) -> None:
    with folder() as root:
        if conda is not None:
            write(root / "conda_dependencies.yml", conda)
        write(root / "azureml_environment.json", text)
        parses_or_refuses(lambda: azure_v1.load(root), exit_codes=(2, 5))


@FUZZ
@given(st.sampled_from(["kiln.yaml", "environment.yaml", "environment.yml", "x.yaml"]), kiln_texts)
def test_format_detection_of_any_yaml(name: str, text: str | bytes) -> None:
    """``kiln env register -f FILE`` first sniffs the format from the file's keys."""
    with folder() as root:
        parses_or_refuses(lambda: load_path(write(root / name, text)))
