"""Telling formats apart, finding the definition in a folder, and saving a definition together
with its local inputs so the saved copy builds the same thing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kiln.artifacts import ArtifactStore
from kiln.environment.canonical import build_hash
from kiln.environment.definition import EnvironmentDefinition
from kiln.formats import dispatch
from kilntesting.cli import error_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azureml_v1"
WHEEL = "wheels/scorer-1.0-py3-none-any.whl"
ALL_MARKERS = (
    "kiln.yaml, kiln.yml, azureml_environment.json, environment.yaml, environment.yml, "
    "requirements.txt"
)

KILN = "name: k\npython:\n  version: '3.11'\n  pip:\n    packages: [numpy==1.26.4]\n"
CONDA = "name: c\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=1.26.4\n"
V2 = "name: v\nimage: python:3.11-slim\n"
REQUIREMENTS = "numpy==1.26.4\n--extra-index-url https://pkgs.example.com/simple\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- detect_file -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("requirements.txt", REQUIREMENTS, "requirements"),
        ("dev-requirements.txt", REQUIREMENTS, "requirements"),
        ("environment.yml", CONDA, "conda"),
        ("env.yaml", "dependencies: [numpy]\n", "conda"),
        ("anything.yaml", V2, "azure-v2"),
        (
            "anything.yaml",
            "name: v\n$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n",
            "azure-v2",
        ),
        ("a.yml", "name: v\nconda_file: conda.yaml\nimage: x\n", "azure-v2"),
        ("a.yml", "name: v\nbuild: {path: ctx}\n", "azure-v2"),
        ("a.yml", "name: v\nos_type: linux\n", "azure-v2"),
        ("kiln.yaml", KILN, "kiln"),
        ("serving.yaml", "name: k\n", "kiln"),
        (
            "serving.yaml",
            "$schema: https://kiln.dev/schema/kiln-environment.schema.json\nname: k\n",
            "kiln",
        ),
        # inference_config exists in both Kiln YAML and v2: the other keys decide.
        (
            "serving.yaml",
            "name: k\npython: {version: '3.11'}\ninference_config:\n  scoring_route: {path: /score, port: 5001}\n",
            "kiln",
        ),
        (
            "serving.yaml",
            "name: k\nimage: x\ninference_config:\n  scoring_route: {path: /score, port: 5001}\n",
            "azure-v2",
        ),
    ],
)
def test_detect_file(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert dispatch.detect_file(write(tmp_path / name, text)) == expected


def test_detect_file_knows_the_azure_v1_file_by_name() -> None:
    assert dispatch.detect_file(FIXTURES / "conda_pip" / "azureml_environment.json") == "azure-v1"


def test_a_file_of_no_known_kind_asks_for_format(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[project]\n")
    assert error_of(dispatch.detect_file, path) == (
        f"cannot tell the format of {path}; pass --format (kiln, azure-v1, azure-v2, conda, "
        "requirements)"
    )


def test_every_detected_file_loads_through_load_path(tmp_path: Path) -> None:
    cases = {
        "kiln.yaml": (KILN, "k"),
        "environment.yml": (CONDA, "c"),
        "environment.yaml": (V2, "v"),
    }
    for name, (text, expected) in cases.items():
        path = write(tmp_path / name.replace(".", "_") / name, text)
        assert dispatch.load_path(path).definition.name == expected
    reqs = dispatch.load_path(write(tmp_path / "r" / "requirements.txt", REQUIREMENTS))
    assert reqs.definition.python.pip.packages == ["numpy==1.26.4"]
    v1 = dispatch.load_path(FIXTURES / "conda_pip" / "azureml_environment.json")
    assert v1.definition.name == "conda-pip"


# --- locate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "text", "expected"),
    [
        ("kiln.yaml", KILN, "kiln"),
        ("kiln.yml", KILN, "kiln"),
        ("environment.yaml", V2, "azure-v2"),
        ("environment.yml", CONDA, "conda"),
        ("requirements.txt", REQUIREMENTS, "requirements"),
        # conda users name their file environment.yaml too: its keys decide, not its name
        ("environment.yaml", CONDA, "conda"),
        ("environment.yml", V2, "azure-v2"),
    ],
)
def test_locate_finds_each_marker_file(
    tmp_path: Path, marker: str, text: str, expected: str
) -> None:
    write(tmp_path / marker, text)
    assert dispatch.locate(tmp_path) == (expected, tmp_path / marker)
    assert dispatch.load_path(tmp_path).files[0] == tmp_path / marker


def test_locate_gives_the_folder_for_azure_v1(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    shutil.copytree(FIXTURES / "conda_pip", folder)
    assert dispatch.locate(folder) == ("azure-v1", folder)
    assert dispatch.load_path(folder).definition.name == "conda-pip"


def test_kiln_yaml_wins_over_other_markers(tmp_path: Path) -> None:
    for name, text in (
        ("requirements.txt", REQUIREMENTS),
        ("environment.yml", CONDA),
        ("kiln.yaml", KILN),
    ):
        write(tmp_path / name, text)
    assert dispatch.locate(tmp_path) == ("kiln", tmp_path / "kiln.yaml")


def test_a_format_override_picks_that_marker(tmp_path: Path) -> None:
    for name, text in (
        ("requirements.txt", REQUIREMENTS),
        ("environment.yml", CONDA),
        ("kiln.yaml", KILN),
    ):
        write(tmp_path / name, text)
    assert dispatch.locate(tmp_path, "requirements") == (
        "requirements",
        tmp_path / "requirements.txt",
    )
    assert dispatch.locate(tmp_path, "conda") == ("conda", tmp_path / "environment.yml")
    assert dispatch.load_path(tmp_path, "conda").definition.name == "c"


def test_a_format_override_applies_to_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "deps.yaml", "name: c\ndependencies: [numpy]\n")
    assert dispatch.locate(path) == ("conda", path)
    assert dispatch.locate(path, "kiln") == ("kiln", path)
    kiln = write(tmp_path / "kiln.yaml", KILN)
    assert error_of(dispatch.load_path, kiln, "azure-v2") == (
        f"unknown key `python` in {kiln}; valid keys: $schema, build, conda_file, datastore, "
        "description, image, inference_config, name, os_type, tags, version"
    )


def test_an_empty_folder_says_what_was_looked_for(tmp_path: Path) -> None:
    assert error_of(dispatch.locate, tmp_path) == (
        f"{tmp_path} holds no environment definition (looked for {ALL_MARKERS}); create one "
        "with `kiln env scaffold`"
    )


def test_a_folder_without_the_overridden_format_says_what_was_looked_for(tmp_path: Path) -> None:
    write(tmp_path / "kiln.yaml", KILN)
    assert error_of(dispatch.locate, tmp_path, "conda") == (
        f"{tmp_path} holds no environment definition (looked for environment.yml); create one "
        "with `kiln env scaffold`"
    )


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    assert error_of(dispatch.locate, tmp_path / "nope") == f"{tmp_path / 'nope'} does not exist"


@pytest.mark.parametrize("target", ["folder", "file"])
def test_an_unknown_format_name_is_a_clear_error(tmp_path: Path, target: str) -> None:
    path = write(tmp_path / "kiln.yaml", KILN)
    expected = "unknown format 'yaml'; choose one of: kiln, azure-v1, azure-v2, conda, requirements"
    assert (
        error_of(dispatch.load_path, tmp_path if target == "folder" else path, "yaml") == expected
    )
    definition = EnvironmentDefinition(name="x")
    assert error_of(dispatch.save_definition, definition, tmp_path / "out", "yaml") == expected
    assert not (tmp_path / "out").exists()
    assert error_of(dispatch.dropped_fields, definition, "yaml") == expected


# --- save_definition -------------------------------------------------------------------------


def make_source(folder: Path) -> Path:
    """A Kiln YAML folder naming a local wheel and a build context with ignore files."""
    write(
        folder / "kiln.yaml",
        f"name: local\npython:\n  version: '3.11'\n  pip:\n    packages: [./{WHEEL}, numpy==1.26.4]\n"
        "docker:\n  build_context: image\n  dockerfile_path: docker/Dockerfile\n",
    )
    (folder / WHEEL).parent.mkdir(parents=True)
    (folder / WHEEL).write_bytes(b"PK\x03\x04 scorer wheel")
    write(folder / "image" / "docker" / "Dockerfile", "FROM python:3.11-slim\nCOPY app /app\n")
    write(folder / "image" / "app" / "main.py", "print('serving')\n")
    write(folder / "image" / "entry.sh", "#!/bin/sh\nexec python /app/main.py\n").chmod(0o755)
    write(folder / "image" / ".gitignore", "*.log\n")
    write(folder / "image" / "run.log", "ignored\n")
    return folder


def test_saving_copies_local_inputs_so_the_build_hash_is_kept(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    original = dispatch.load_path(source).definition
    written = dispatch.save_definition(original, tmp_path / "out", "kiln", source_dir=source)
    out = tmp_path / "out"
    names = {str(p.relative_to(out)) for p in written}  # every file written, inputs included
    assert {"kiln.yaml", WHEEL, "image/docker/Dockerfile", "image/entry.sh"} <= names
    assert "image/run.log" not in names  # ignored by the context's .gitignore
    assert (out / WHEEL).read_bytes() == (source / WHEEL).read_bytes()
    again = dispatch.load_path(out).definition
    assert again == original
    assert build_hash(again) == build_hash(original)
    # The copy stands on its own: the source can go away.
    shutil.rmtree(source)
    assert build_hash(dispatch.load_path(out).definition) == build_hash(original)


def test_saving_as_azure_v2_copies_the_wheel_next_to_the_conda_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(
        source / "kiln.yaml",
        f"name: local\npython:\n  version: '3.11'\n  pip:\n    packages: [./{WHEEL}]\n"
        "docker:\n  base_image: python:3.11-slim\n",
    )
    (source / WHEEL).parent.mkdir(parents=True)
    (source / WHEEL).write_bytes(b"PK wheel")
    original = dispatch.load_path(source).definition
    dispatch.save_definition(original, tmp_path / "out", "azure-v2", source_dir=source)
    again = dispatch.load_path(tmp_path / "out").definition
    assert dispatch.locate(tmp_path / "out")[0] == "azure-v2"
    assert build_hash(again) == build_hash(original)


def test_saving_takes_inputs_from_the_artifact_store_when_the_source_is_gone(
    tmp_path: Path,
) -> None:
    source = make_source(tmp_path / "src")
    original = dispatch.load_path(source).definition
    store = ArtifactStore(tmp_path / "store")
    store.put_file(source / WHEEL)
    store.put_tree(source / "image")
    shutil.rmtree(source)
    dispatch.save_definition(original, tmp_path / "out", "kiln", lookup=store.lookup)
    assert build_hash(dispatch.load_path(tmp_path / "out").definition) == build_hash(original)


def test_saving_without_the_inputs_anywhere_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    original = dispatch.load_path(source).definition
    (source / WHEEL).write_bytes(b"a different wheel now")
    digest = original.python.pip.file_digests[f"./{WHEEL}"]
    assert error_of(dispatch.save_definition, original, tmp_path / "out", source_dir=source) == (
        f"the content of './{WHEEL}' (sha256 {digest[:12]}) is neither in {source} nor in the "
        "workspace; register it from a folder that holds it"
    )
    assert not (tmp_path / "out").exists()


def test_a_build_context_that_is_the_definition_folder_cannot_be_saved(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "Dockerfile", "FROM python:3.11-slim\n")
    write(source / "environment.yaml", "name: here\nbuild:\n  path: .\n")
    original = dispatch.load_path(source).definition
    assert original.docker.build_context == "."
    assert error_of(dispatch.save_definition, original, tmp_path / "out", source_dir=source) == (
        "`docker.build_context` is '.', the definition's own folder, so it cannot be saved "
        "elsewhere unchanged; move the Dockerfile and its files into a subfolder and point "
        "build_context (build.path) at it"
    )
    assert not (tmp_path / "out").exists()


def test_dropped_fields_by_format() -> None:
    definition = EnvironmentDefinition.model_validate(
        {"name": "x", "environment_variables": {"A": "1"}, "docker": {"base_image": "u:1"}}
    )
    assert dispatch.dropped_fields(definition, "kiln") == []
    assert dispatch.dropped_fields(definition, "azure-v2") == ["environment_variables"]


def test_save_definition_writes_the_requested_format(tmp_path: Path) -> None:
    definition = EnvironmentDefinition.model_validate(
        {"name": "x", "python": {"version": "3.11", "pip": {"packages": ["numpy==1.26.4"]}}}
    )
    markers = {
        "kiln": "kiln.yaml",
        "azure-v2": "environment.yaml",
        "conda": "environment.yml",
        "requirements": "requirements.txt",
    }
    for fmt, marker in markers.items():
        folder = tmp_path / fmt
        dispatch.save_definition(definition, folder, fmt)
        assert (folder / marker).is_file()
        assert dispatch.locate(folder)[0] == fmt
        same_build = build_hash(dispatch.load_path(folder).definition) == build_hash(definition)
        # requirements.txt has no place for the python version, and says so
        assert same_build == (dispatch.dropped_fields(definition, fmt) == []), fmt
    assert dispatch.dropped_fields(definition, "requirements") == ["python.version"]
    dispatch.save_definition(definition, tmp_path / "v1", "azure-v1")
    data = json.loads((tmp_path / "v1" / "azureml_environment.json").read_text())
    assert data["name"] == "x"
    assert build_hash(dispatch.load_path(tmp_path / "v1").definition) == build_hash(definition)
