"""Kiln YAML: a realistic file loads, bad input gives one clear error, local inputs are read by
content, save writes what load reads, and parse -> write -> parse is the identity."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.formats import kiln_yaml

HEADER = f"# yaml-language-server: $schema={kiln_yaml.schema_file().as_uri()}\n"
WHEEL = "wheels/scorer-1.0-py3-none-any.whl"

FULL = """\
# yaml-language-server: $schema=https://kiln.dev/schema/kiln-environment.schema.json
$schema: https://kiln.dev/schema/kiln-environment.schema.json
name: fraud-scoring
version: "3"
description: Gradient-boosted fraud model behind a private base image.
tags:
  team: risk
  stage: prod
python:
  version: "3.11"
  conda:
    channels: [conda-forge, nvidia]
    packages:
      - numpy=1.26.4
      - conda-forge::libgomp>=13
      - pip
  pip:
    packages:
      - scikit-learn==1.4.2
      - lightgbm[dask,scikit-learn]>=4.3,<5 ; python_version >= "3.9"
      - requests==2.31.0   --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f
    constraints:
      - urllib3<3
    index_url: https://pypi.example.com/simple
    extra_index_urls:
      - https://ci:${PYPI_TOKEN}@pkgs.example.com/simple
    find_links: [https://wheels.example.com/]
    pre: true
environment_variables:
  OMP_NUM_THREADS: "4"
  MODEL_NAME: fraud
docker:
  base_image: registry.example.com/ml/base:2024.05
  base_image_registry:
    address: registry.example.com
    username: ci-bot
    password: ${REG_PW}
  platform:
    os: Linux
    architecture: arm64
spark:
  repositories: [https://repo1.maven.org/maven2]
  packages:
    - {group: com.microsoft.azure, artifact: synapseml_2.12, version: "1.0.4"}
  precache_packages: false
inferencing_stack_version: latest
inference_config:
  liveness_route: {path: /health, port: 5001}
  readiness_route: {path: /ready, port: 5001}
  scoring_route: {path: /score, port: 5001}
"""


def write(folder: Path, text: str | bytes, name: str = "kiln.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(InvalidDefinition) as caught:
        kiln_yaml.load(path)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_mode, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def add_wheel(folder: Path, content: bytes = b"PK\x03\x04 a wheel") -> Path:
    wheel = folder / WHEEL
    wheel.parent.mkdir(parents=True, exist_ok=True)
    wheel.write_bytes(content)
    return wheel


def add_context(folder: Path) -> Path:
    context = folder / "image"
    (context / "app").mkdir(parents=True, exist_ok=True)
    (context / "docker").mkdir(exist_ok=True)
    (context / "docker" / "Dockerfile.gpu").write_text("FROM nvidia/cuda:12.4.1-runtime\n")
    (context / "app" / "main.py").write_text("print('serving')\n")
    (context / ".gitignore").write_text("*.log\n")
    (context / ".kilnignore").write_text("data/\n")
    return context


LOCAL = f"""\
name: local-inputs
python:
  version: "3.11"
  pip:
    packages:
      - ./{WHEEL}
      - numpy==1.26.4
docker:
  build_context: image
  dockerfile_path: docker/Dockerfile.gpu
"""


# --- a realistic file ------------------------------------------------------------------------


def test_a_full_realistic_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    loaded = kiln_yaml.load(path)
    expected = EnvironmentDefinition.model_validate(
        {
            "name": "fraud-scoring",
            "version": "3",
            "description": "Gradient-boosted fraud model behind a private base image.",
            "tags": {"team": "risk", "stage": "prod"},
            "python": {
                "version": "3.11",
                "conda": {
                    "channels": ["conda-forge", "nvidia"],
                    "packages": ["numpy=1.26.4", "conda-forge::libgomp>=13", "pip"],
                },
                "pip": {
                    "packages": [
                        "scikit-learn==1.4.2",
                        'lightgbm[dask,scikit-learn]>=4.3,<5 ; python_version >= "3.9"',
                        # runs of spaces collapse: a requirement line's words are what count
                        "requests==2.31.0 --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b"
                        "7f4300988b709f44e013003f",
                    ],
                    "constraints": ["urllib3<3"],
                    "index_url": "https://pypi.example.com/simple",
                    "extra_index_urls": ["https://ci:${PYPI_TOKEN}@pkgs.example.com/simple"],
                    "find_links": ["https://wheels.example.com/"],
                    "pre": True,
                },
            },
            "environment_variables": {"OMP_NUM_THREADS": "4", "MODEL_NAME": "fraud"},
            "docker": {
                "base_image": "registry.example.com/ml/base:2024.05",
                "base_image_registry": {
                    "address": "registry.example.com",
                    "username": "ci-bot",
                    "password": "${REG_PW}",
                },
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            "spark": {
                "repositories": ["https://repo1.maven.org/maven2"],
                "packages": [
                    {
                        "group": "com.microsoft.azure",
                        "artifact": "synapseml_2.12",
                        "version": "1.0.4",
                    }
                ],
                "precache_packages": False,
            },
            "inferencing_stack_version": "latest",
            "inference_config": {
                "liveness_route": {"path": "/health", "port": 5001},
                "readiness_route": {"path": "/ready", "port": 5001},
                "scoring_route": {"path": "/score", "port": 5001},
            },
        }
    )
    assert loaded.definition == expected
    assert loaded.files == (path,)
    assert loaded.warnings == ()
    # The registry password stays a reference; the secret itself is never read or stored.
    assert loaded.definition.docker.base_image_registry is not None
    assert loaded.definition.docker.base_image_registry.password == "${REG_PW}"


def test_the_full_file_saves_and_loads_back_unchanged(tmp_path: Path) -> None:
    original = kiln_yaml.load(write(tmp_path / "in", FULL)).definition
    kiln_yaml.save(original, tmp_path / "out")
    again = kiln_yaml.load(tmp_path / "out" / "kiln.yaml").definition
    assert again == original
    assert (build_hash(again), definition_digest(again)) == (
        build_hash(original),
        definition_digest(original),
    )


def test_loading_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    write(folder, LOCAL)
    add_wheel(folder)
    add_context(folder)
    before = snapshot(folder)
    loaded = kiln_yaml.load(folder / "kiln.yaml")
    assert loaded.definition.docker.build_context_digest is not None
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env"]


# --- bad input: one line, naming the field and a fix -----------------------------------------

BAD_INPUT = {
    "list at top level": (
        "- name: x\n- name: y\n",
        "{path} must hold a mapping of keys to values, not list",
    ),
    "empty file": ("", "{path} must hold a mapping of keys to values, not NoneType"),
    "unknown top-level key": (
        "name: x\npyton:\n  version: '3.11'\n",
        "unknown key `pyton` in {path}; did you mean `python`?",
    ),
    "unknown nested key": (
        "name: x\npython:\n  pip:\n    package: [numpy]\n",
        "unknown key `python.pip.package` in {path}; did you mean `packages`?",
    ),
    "unknown key with nothing close": (
        "name: x\ndocker:\n  zzz: 1\n",
        "unknown key `docker.zzz` in {path}; valid keys: base_image, base_image_registry, "
        "dockerfile, build_context, dockerfile_path, build_context_digest, build_context_commit, "
        "platform, enabled, "
        "shm_size, arguments",
    ),
    "python given as its version": (
        "name: x\npython: '3.11'\n",
        '`python` in {path}: is a section, not a str; write python: {{version: "3.11"}}',
    ),
    "python given as a number": (
        "name: x\npython: 3.10\n",
        '`python` in {path}: is a section, not a float; write python: {{version: "X.Y"}}',
    ),
    "pip packages given as a list": (
        "name: x\npython:\n  pip: [numpy]\n",
        "`python.pip` in {path}: is a section, not a list; put the list under its `packages` "
        "key: pip: {{packages: [...]}}",
    ),
    "docker given as an image name": (
        "name: x\ndocker: python:3.11-slim\n",
        "`docker` in {path}: is a section, not a str; its keys: base_image, base_image_registry, "
        "dockerfile, build_context, dockerfile_path, build_context_digest, build_context_commit, "
        "platform, enabled, shm_size, arguments",
    ),
    "python.version as a float": (
        "name: x\npython:\n  version: 3.10\n",
        "`python.version` in {path}: Input should be a valid string (got float); YAML reads "
        '3.10 unquoted as a number: quote it, e.g. version: "3.10"',
    ),
    "version as an int": (
        "name: x\nversion: 3\n",
        "`version` in {path}: Input should be a valid string (got int); YAML reads 3 unquoted "
        'as a number: quote it, e.g. version: "3"',
    ),
    "a tag that YAML reads as a boolean": (
        "name: x\ntags:\n  gpu: yes\n",
        "`tags.gpu` in {path}: Input should be a valid string (got bool); YAML reads yes "
        'unquoted as true/false: quote it, e.g. gpu: "yes"',
    ),
    "a list item that YAML reads as a number": (
        "name: x\npython:\n  conda:\n    channels: [conda-forge, 1.20]\n",
        "`python.conda.channels[1]` in {path}: Input should be a valid string (got float); "
        'YAML reads 1.20 unquoted as a number: quote it, e.g. - "1.20"',
    ),
    "duplicate key": (
        "name: x\npython:\n  version: '3.11'\nname: y\n",
        "{path}: duplicate key `name` at line 4; keep one of them",
    ),
    "missing name": ("version: '1'\n", "`name` in {path}: is required"),
    "empty name": (
        "name: ''\n",
        "`name` in {path}: is empty; use letters, digits, '.', '_' and '-', starting with a "
        "letter or digit (e.g. 'team-train')",
    ),
    "name with a slash": (
        "name: team/env\n",
        "`name` in {path}: 'team/env' is not allowed: use letters, digits, '.', '_' and '-', "
        "starting with a letter or digit (e.g. 'team-train')",
    ),
    "name of 256 characters": (
        "name: " + "n" * 256 + "\n",
        "`name` in {path}: is 256 characters, over the limit of 255; shorten it",
    ),
    "version latest": (
        "name: x\nversion: Latest\n",
        "`version` in {path}: 'latest' is not a version; leave version out to get the next one",
    ),
    "a comment as a package": (
        "name: x\npython:\n  pip:\n    packages:\n      - numpy\n      - '# pinned below'\n",
        "`python.pip.packages` in {path}: entry 1: '# pinned below' is a comment, not a package",
    ),
    "a pip option as a package": (
        "name: x\npython:\n  pip:\n    packages: ['--index-url https://x.example/simple']\n",
        "`python.pip.packages` in {path}: entry 0: '--index-url https://x.example/simple' is a "
        "pip option, not a package; put index options under pip options",
    ),
    "base_image and dockerfile both set": (
        "name: x\ndocker:\n  base_image: ubuntu:22.04\n  dockerfile: FROM ubuntu:22.04\n",
        "`docker` in {path}: `docker.base_image` and `docker.dockerfile` are both set; an image "
        "comes from one of base_image, dockerfile or build_context: remove all but one",
    ),
    "plain-text registry password": (
        "name: x\ndocker:\n  base_image: r.example/x:1\n  base_image_registry:\n"
        "    address: r.example\n    username: bob\n    password: hunter2\n",
        "`docker.base_image_registry.password` in {path}: a plain-text password is never "
        "stored; set it in an environment variable and write password: ${{MY_REGISTRY_PASSWORD}}",
    ),
    "plain-text password in an index URL": (
        "name: x\npython:\n  pip:\n    index_url: https://bob:hunter2@pkgs.example/simple\n",
        "`python.pip.index_url` in {path}: a URL carries a plain-text password or token; write "
        "https://USER:${{ENV_VAR}}@HOST/... so the secret is read from the environment",
    ),
    "bad environment variable name": (
        "name: x\nenvironment_variables:\n  2FAST: '1'\n",
        "`environment_variables` in {path}: variable name '2FAST' is invalid; use letters, "
        "digits and '_', not first a digit",
    ),
    "dockerfile_path without build_context": (
        "name: x\ndocker:\n  dockerfile_path: Dockerfile\n",
        "`docker` in {path}: `docker.dockerfile_path` needs `docker.build_context`",
    ),
    "bad platform os": (
        "name: x\ndocker:\n  platform: {os: macos}\n",
        "`docker.platform.os` in {path}: Input should be 'linux' or 'windows'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gives_one_line_naming_the_field(case: str, tmp_path: Path) -> None:
    text, expected = BAD_INPUT[case]
    path = write(tmp_path, text)
    before = snapshot(tmp_path)
    assert error(path) == expected.format(path=path)
    assert snapshot(tmp_path) == before


def test_malformed_yaml_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ndescription: ready: yes\n")
    assert error(path) == (
        f"{path} is not valid YAML at line 2, column 19: mapping values are not allowed here"
    )


def test_an_invalid_pip_line_names_the_entry_and_how_to_write_it(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\npython:\n  pip:\n    packages: [pandas, numpy=1.26]\n")
    assert error(path) == (
        f"`python.pip.packages` in {path}: entry 1: 'numpy=1.26' is not a valid requirement "
        "(Expected semicolon (after name with no version specifier) or end); write it as "
        "NAME[extras]SPEC, e.g. 'scikit-learn>=1.4'"
    )


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"name: x\n#" + b"-" * (5 * 1024 * 1024) + b"\n")
    size = path.stat().st_size
    assert error(path) == (
        f"`kiln.yaml`: {path} is {size:,} bytes, over the 5,242,880-byte limit for definition "
        "files; is this the right file?"
    )


def test_a_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ndescription: Modèle\n".encode("cp1252"))
    assert error(path) == (
        f"`kiln.yaml`: {path} is not UTF-8 text (invalid continuation byte at byte 24); "
        "save it as UTF-8"
    )


def test_a_utf8_file_with_a_bom_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffname: x\ndescription: Modèle\n".encode())
    assert kiln_yaml.load(path).definition.description == "Modèle"


# --- local inputs ----------------------------------------------------------------------------


def test_a_local_wheel_gets_its_sha256(tmp_path: Path) -> None:
    write(tmp_path, f"name: x\npython:\n  pip:\n    packages: [./{WHEEL}, numpy==1.26.4]\n")
    wheel = add_wheel(tmp_path)
    pip = kiln_yaml.load(tmp_path / "kiln.yaml").definition.python.pip
    assert pip.file_digests == {f"./{WHEEL}": hashlib.sha256(wheel.read_bytes()).hexdigest()}


def test_a_wheel_content_change_changes_the_build_hash_and_a_move_does_not(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "a"
    write(folder, f"name: x\npython:\n  pip:\n    packages: [./{WHEEL}]\n")
    wheel = add_wheel(folder)
    first = build_hash(kiln_yaml.load(folder / "kiln.yaml").definition)
    moved = Path(shutil.move(folder, tmp_path / "b" / "c"))
    assert build_hash(kiln_yaml.load(moved / "kiln.yaml").definition) == first
    (moved / WHEEL).write_bytes(b"PK\x03\x04 another build")
    assert build_hash(kiln_yaml.load(moved / "kiln.yaml").definition) != first
    assert not wheel.exists()


def test_digests_written_in_the_file_are_ignored(tmp_path: Path) -> None:
    """Kiln computes digests from the files; a stale or forged one in the YAML has no effect."""
    forged = "0" * 64
    honest = f"name: x\npython:\n  pip:\n    packages: [./{WHEEL}]\ndocker:\n  base_image: u:1\n"
    lying = (
        honest.replace("packages: [", f"file_digests: {{'./{WHEEL}': '{forged}'}}\n    packages: [")
        + f"  build_context_digest: '{forged}'\n"
    )
    add_wheel(tmp_path)
    expected = kiln_yaml.load(write(tmp_path, honest, "honest.yaml")).definition
    assert kiln_yaml.load(write(tmp_path, lying, "lying.yaml")).definition == expected
    assert expected.python.pip.file_digests[f"./{WHEEL}"] != forged
    assert expected.docker.build_context_digest is None


@pytest.mark.parametrize("entry", ["../x-1.0-py3-none-any.whl", "/tmp/x-1.0-py3-none-any.whl"])
def test_a_wheel_outside_the_folder_is_an_error(tmp_path: Path, entry: str) -> None:
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"PK")
    path = write(tmp_path / "env", f"name: x\npython:\n  pip:\n    packages: ['{entry}']\n")
    assert error(path) == (
        f"`python.pip.packages[0]`: {entry!r} points outside {path.parent.resolve()}; keep "
        "referenced files inside the definition's directory"
    )


def test_a_symlinked_wheel_pointing_outside_is_an_error(tmp_path: Path) -> None:
    outside = tmp_path / "x-1.0-py3-none-any.whl"
    outside.write_bytes(b"PK")
    folder = tmp_path / "env"
    path = write(folder, "name: x\npython:\n  pip:\n    packages: [./x-1.0-py3-none-any.whl]\n")
    (folder / "x-1.0-py3-none-any.whl").symlink_to(outside)
    assert error(path) == (
        f"`python.pip.packages[0]`: './x-1.0-py3-none-any.whl' points outside "
        f"{folder.resolve()}; keep referenced files inside the definition's directory"
    )


def test_a_missing_wheel_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"name: x\npython:\n  pip:\n    packages: [./{WHEEL}]\n")
    assert error(path) == (f"`python.pip.packages[0]`: {tmp_path.resolve() / WHEEL} does not exist")


def test_a_build_context_gets_its_digest_and_honours_ignore_files(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    write(folder, LOCAL)
    add_wheel(folder)
    context = add_context(folder)

    def current() -> str:
        return build_hash(kiln_yaml.load(folder / "kiln.yaml").definition)

    loaded = kiln_yaml.load(folder / "kiln.yaml").definition
    assert loaded.docker.build_context == "image"
    assert loaded.docker.dockerfile_path == "docker/Dockerfile.gpu"
    assert loaded.docker.build_context_digest is not None
    first = current()
    (context / "server.log").write_text("ignored by .gitignore\n")
    (context / "data").mkdir()
    (context / "data" / "train.csv").write_text("ignored by .kilnignore\n")
    assert current() == first
    (context / "app" / "main.py").write_text("print('serving v2')\n")
    second = current()
    assert second != first
    moved = Path(shutil.move(folder, tmp_path / "moved" / "elsewhere"))
    assert build_hash(kiln_yaml.load(moved / "kiln.yaml").definition) == second


def test_a_dockerfile_path_missing_from_the_context_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name: x\ndocker:\n  build_context: image\n  dockerfile_path: Dockerfile.cpu\n"
    )
    context = add_context(tmp_path)
    assert error(path) == (
        f"`docker.dockerfile_path`: Dockerfile.cpu not found in {context.resolve()}; add it or "
        "set dockerfile_path"
    )


def test_a_dockerfile_path_leaving_the_context_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name: x\ndocker:\n  build_context: image\n  dockerfile_path: ../Dockerfile\n"
    )
    context = add_context(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert error(path) == (
        f"`docker.dockerfile_path`: '../Dockerfile' points outside {context.resolve()}; keep "
        "referenced files inside the definition's directory"
    )


def test_a_build_context_outside_the_folder_is_an_error(tmp_path: Path) -> None:
    add_context(tmp_path)
    path = write(tmp_path / "env", "name: x\ndocker:\n  build_context: ../image\n")
    assert error(path) == (
        f"`docker.build_context`: '../image' points outside {path.parent.resolve()}; keep "
        "referenced files inside the definition's directory"
    )


# --- save ------------------------------------------------------------------------------------


def test_save_writes_the_schema_comment_and_leaves_out_defaults(tmp_path: Path) -> None:
    definition = EnvironmentDefinition.model_validate(
        {"name": "tiny", "python": {"version": "3.11", "pip": {"packages": ["numpy==1.26.4"]}}}
    )
    written = kiln_yaml.save(definition, tmp_path)
    assert written == [tmp_path / "kiln.yaml"]
    assert written[0].read_text() == (
        HEADER + "name: tiny\npython:\n  version: '3.11'\n  pip:\n    packages:\n"
        "    - numpy==1.26.4\n"
    )


def test_save_leaves_out_computed_digests(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    write(folder, LOCAL)
    add_wheel(folder)
    add_context(folder)
    loaded = kiln_yaml.load(folder / "kiln.yaml").definition
    assert loaded.python.pip.file_digests and loaded.docker.build_context_digest
    kiln_yaml.save(loaded, folder)  # back into its own folder, next to its inputs
    text = (folder / "kiln.yaml").read_text()
    assert text.startswith(HEADER)
    assert "file_digests" not in text and "build_context_digest" not in text
    assert yaml.safe_load(text) == yaml.safe_load(LOCAL)
    assert kiln_yaml.load(folder / "kiln.yaml").definition == loaded


def test_line_break_characters_survive(tmp_path: Path) -> None:
    """PyYAML writes U+0085/U+2028/U+2029 raw inside single quotes and folds them on reading."""
    text = "one\x85two\u2028three\u2029four"
    definition = EnvironmentDefinition(name="x", description=text, tags={text: text})
    kiln_yaml.save(definition, tmp_path)
    assert kiln_yaml.load(tmp_path / "kiln.yaml").definition == definition


def test_save_to_a_yaml_path_writes_that_file(tmp_path: Path) -> None:
    definition = EnvironmentDefinition(name="named")
    assert kiln_yaml.save(definition, tmp_path / "sub" / "serving.yml") == [
        tmp_path / "sub" / "serving.yml"
    ]
    assert kiln_yaml.load(tmp_path / "sub" / "serving.yml").definition == definition
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["serving.yml"]


# --- parse -> write -> parse -----------------------------------------------------------------

# Not stripped: values such as "> " or "" must come back exactly as they went in.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
_KEYS = _TEXT.filter(bool)
_PIP_NAMES = ["numpy", "scikit-learn", "Pillow", "zope.interface", "typing_extensions", "torch"]
_MARKERS = ['python_version >= "3.9"', 'sys_platform == "linux"', "platform_machine != 'arm64'"]
_CONDA = ["numpy", "numpy=1.26.4", "conda-forge::libgomp>=13", "cudatoolkit 11.8.*", "pip"]
_URLS = ["https://pypi.example.com/simple", "https://u:${TOKEN}@pkgs.example.com/simple/"]
_DOCKERFILE_LINES = ["RUN apt-get update && apt-get install -y git", "ENV A=1", "COPY . /src  "]


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


@st.composite
def pip_requirements(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_PIP_NAMES))
    extras = draw(st.lists(st.sampled_from(["cpu", "dev", "test"]), max_size=2, unique=True))
    if extras:
        text += "[" + ",".join(extras) + "]"
    text += draw(st.sampled_from(["", "==1.26.4", ">=1.4,<2", "~=2.1", "!=1.0.1"]))
    marker = draw(_maybe(st.sampled_from(_MARKERS)))
    return f"{text} ; {marker}" if marker else text


@st.composite
def docker_sections(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from(["none", "image", "dockerfile"]))
    docker: dict[str, Any] = {
        "platform": draw(
            _maybe(
                st.fixed_dictionaries(
                    {
                        "os": st.sampled_from(["linux", "windows"]),
                        "architecture": st.sampled_from(["amd64", "arm64"]),
                    }
                )
            )
        )
    }
    if source == "image":
        docker["base_image"] = draw(st.sampled_from(["python:3.11-slim", "r.example/a/b:1@x"]))
        if draw(st.booleans()):
            docker["base_image_registry"] = {
                "address": "r.example",
                "username": draw(_maybe(st.just("ci-bot"))),
                "password": draw(_maybe(st.just("${REG_PW}"))),
            }
    elif source == "dockerfile":
        lines = draw(st.lists(st.sampled_from(_DOCKERFILE_LINES), max_size=3))
        docker["dockerfile"] = "\n".join(["FROM ubuntu:22.04", *lines]) + "\n"
    return docker


@st.composite
def definitions(draw: st.DrawFn) -> EnvironmentDefinition:
    data = {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,20}", fullmatch=True)),
        "version": draw(
            _maybe(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,8}", fullmatch=True)).filter(
                lambda v: v is None or v.lower() != "latest"
            )
        ),
        "description": draw(_maybe(_TEXT)),
        "tags": draw(st.dictionaries(_KEYS, _TEXT, max_size=3)),
        "python": {
            "version": draw(_maybe(st.from_regex(r"3(\.[0-9]{1,2}){0,2}", fullmatch=True))),
            "conda": {
                "channels": draw(st.lists(st.sampled_from(["conda-forge", "nvidia", *_URLS]))),
                "packages": draw(st.lists(st.sampled_from(_CONDA), max_size=4)),
            },
            "pip": {
                "packages": draw(st.lists(pip_requirements(), max_size=4)),
                "constraints": draw(st.lists(pip_requirements(), max_size=2)),
                "index_url": draw(_maybe(st.sampled_from(_URLS))),
                "extra_index_urls": draw(st.lists(st.sampled_from(_URLS), max_size=2)),
                "find_links": draw(st.lists(st.sampled_from(_URLS), max_size=2)),
                "pre": draw(st.booleans()),
            },
        },
        "environment_variables": draw(
            st.dictionaries(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), _TEXT, max_size=3
            )
        ),
        "docker": draw(docker_sections()),
        "spark": {
            "repositories": draw(st.lists(st.just("https://repo1.maven.org/maven2"), max_size=1)),
            "packages": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "group": st.sampled_from(["com.microsoft.azure", "org.apache"]),
                            "artifact": st.sampled_from(["synapseml_2.12", "spark-avro_2.12"]),
                            "version": st.sampled_from(["1.0.4", "3.5.1"]),
                        }
                    ),
                    max_size=2,
                )
            ),
            "precache_packages": draw(st.booleans()),
        },
        "inferencing_stack_version": draw(_maybe(st.sampled_from(["latest", "1.2"]))),
    }
    return EnvironmentDefinition.model_validate(data)


def _round_trip(definition: EnvironmentDefinition, folder: Path) -> EnvironmentDefinition:
    kiln_yaml.save(definition, folder)
    return kiln_yaml.load(folder / kiln_yaml.DEFAULT_FILE).definition


@settings(max_examples=60, deadline=None)
@given(definition=definitions())
def test_parse_write_parse_is_the_identity(definition: EnvironmentDefinition) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = _round_trip(definition, Path(tmp) / "first")
        second = _round_trip(first, Path(tmp) / "second")
    # Kiln YAML has no normal form beyond the model's own (whitespace already stripped when
    # `definition` was validated), so even the first trip is exact.
    assert first == second == definition
    assert build_hash(first) == build_hash(definition)
    assert definition_digest(first) == definition_digest(definition)


def _with(definition: EnvironmentDefinition, **changes: Any) -> EnvironmentDefinition:
    return EnvironmentDefinition.model_validate({**definition.model_dump(), **changes})


def _with_python(
    definition: EnvironmentDefinition, section: str, packages: list[str]
) -> EnvironmentDefinition:
    data = definition.model_dump()
    data["python"][section]["packages"] = packages
    return EnvironmentDefinition.model_validate(data)


@settings(max_examples=60, deadline=None)
@given(
    definition=definitions(),
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,20}", fullmatch=True),
    version=_maybe(st.sampled_from(["1", "2024.05", "v9"])),
    description=_maybe(_TEXT),
    tags=st.dictionaries(_KEYS, _TEXT, max_size=2),
)
def test_renaming_keeps_the_build_hash_and_package_changes_change_it(
    definition: EnvironmentDefinition,
    name: str,
    version: str | None,
    description: str | None,
    tags: dict[str, str],
) -> None:
    original = build_hash(definition)
    renamed = _with(definition, name=name, version=version, description=description, tags=tags)
    assert build_hash(renamed) == original
    assert definition_digest(renamed) == definition_digest(definition)

    pip, conda = definition.python.pip.packages, definition.python.conda.packages
    changed = [
        _with_python(definition, "pip", [*pip, "kiln-probe==1.0"]),
        _with_python(definition, "pip", ["kiln-probe==1.0", *pip]),
        _with_python(definition, "conda", [*conda, "kiln-probe=1.0"]),
    ]
    if pip:
        changed.append(_with_python(definition, "pip", pip[:-1]))
        changed.append(_with_python(definition, "pip", [*pip[:-1], "kiln-probe>=2"]))
    if conda and conda[-1] != "pip":  # a bare `pip` is implied by pip packages: no change
        changed.append(_with_python(definition, "conda", conda[:-1]))
        changed.append(_with_python(definition, "conda", [*conda[:-1], "kiln-probe>=2"]))
    for other in changed:
        assert build_hash(other) != original, other.python
