"""conda environment.yml: read into a definition, written back, and read again unchanged."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_hash
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.formats import conda_env

HASH = "ab" * 32
WHEEL_BYTES = b"wheel bytes"
ENVIRONMENT = f"""\
# Training environment for the vision team
name: train-env
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11
  - numpy=1.26.4  # pinned
  - conda-forge::scipy>=1.11
  - libgcc-ng 13.2.0
  - pip
  - pip:
      - --index-url https://pypi.example.com/simple
      - --extra-index-url=https://${{PIP_USER}}:${{PIP_TOKEN}}@private.example.com/simple
      - --pre
      - "# not a package"
      - requests==2.31.0
      - torch==2.3.0 --hash=sha256:{HASH}
      - "tomli; python_version < '3.11'"
      - ./wheels/mylib-0.1-py3-none-any.whl
variables:
  OMP_NUM_THREADS: 4
  HF_HOME: /cache/hf
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "environment.yml"
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path) -> str:
    with pytest.raises(InvalidDefinition) as caught:
        conda_env.load(path)
    return caught.value.message


@pytest.fixture
def environment(tmp_path: Path) -> Path:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels/mylib-0.1-py3-none-any.whl").write_bytes(WHEEL_BYTES)
    return write(tmp_path, ENVIRONMENT)


def test_load_a_realistic_file(environment: Path) -> None:
    loaded = conda_env.load(environment)
    definition = loaded.definition
    python = definition.python
    assert definition.name == "train-env"
    assert python.version == "3.11"
    assert python.conda.channels == ["conda-forge", "nodefaults"]
    assert python.conda.packages == [
        "numpy=1.26.4",
        "conda-forge::scipy>=1.11",
        "libgcc-ng 13.2.0",
        "pip",
    ]
    assert python.pip.packages == [
        "requests==2.31.0",
        f"torch==2.3.0 --hash=sha256:{HASH}",
        "tomli; python_version < '3.11'",
        "./wheels/mylib-0.1-py3-none-any.whl",
    ]
    assert python.pip.index_url == "https://pypi.example.com/simple"
    assert python.pip.extra_index_urls == [
        "https://${PIP_USER}:${PIP_TOKEN}@private.example.com/simple"
    ]
    assert python.pip.find_links == []
    assert python.pip.pre is True
    assert python.pip.file_digests == {
        "./wheels/mylib-0.1-py3-none-any.whl": hashlib.sha256(WHEEL_BYTES).hexdigest()
    }
    assert definition.environment_variables == {"OMP_NUM_THREADS": "4", "HF_HOME": "/cache/hf"}
    assert loaded.warnings == (
        f"{environment}: '# not a package' in the pip list is a comment, not a package",
    )
    assert loaded.files == (environment,)


def test_render_writes_the_normal_form(environment: Path) -> None:
    definition = conda_env.load(environment).definition
    assert conda_env.render(definition) == (
        "name: train-env\n"
        "channels:\n- conda-forge\n- nodefaults\n"
        "dependencies:\n"
        "- python=3.11\n- numpy=1.26.4\n- conda-forge::scipy>=1.11\n- libgcc-ng 13.2.0\n- pip\n"
        "- pip:\n"
        "  - --index-url https://pypi.example.com/simple\n"
        "  - --extra-index-url https://${PIP_USER}:${PIP_TOKEN}@private.example.com/simple\n"
        "  - --pre\n"
        "  - requests==2.31.0\n"
        f"  - torch==2.3.0 --hash=sha256:{HASH}\n"
        "  - tomli; python_version < '3.11'\n"
        "  - ./wheels/mylib-0.1-py3-none-any.whl\n"
        "variables:\n  OMP_NUM_THREADS: '4'\n  HF_HOME: /cache/hf\n"
    )


def test_save_then_load_in_the_same_folder(environment: Path) -> None:
    definition = conda_env.load(environment).definition
    written = conda_env.save(definition, environment.parent / "copy.yml")
    assert written == [environment.parent / "copy.yml"]
    assert conda_env.load(written[0]).definition == definition


def test_bare_pip_alone_is_implied_and_name_defaults_to_the_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "svc", "dependencies: [pip, {pip: [numpy]}]\n")
    definition = conda_env.load(path).definition
    assert definition.name == "svc"
    assert definition.python.conda.packages == []
    assert definition.python.pip.packages == ["numpy"]


def test_pip_is_added_beside_other_conda_packages(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies: [numpy, {pip: [requests]}]\n")
    assert conda_env.load(path).definition.python.conda.packages == ["numpy", "pip"]


# Errors ----------------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependecies: [numpy]\n")
    assert error(path) == f"unknown key `dependecies` in {path}; did you mean `dependencies`?"


def test_unknown_key_in_a_dependency_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies: [{npm: [x]}]\n")
    assert error(path) == f"unknown key `dependencies.npm` in {path}; valid keys: pip"


def test_dependencies_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  numpy: 1.26\n")
    assert error(path) == f"`channels` and `dependencies` in {path} must be lists"


def test_pip_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - pip: requests\n")
    assert error(path) == f"`dependencies[0].pip` in {path} must be a list"


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- numpy\n- scipy\n")
    assert error(path) == f"{path} must hold a mapping of keys to values, not list"


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - numpy\n - scipy\n")
    assert error(path).startswith(f"{path} is not valid YAML at line 4, column 2: ")


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nchannels: [conda-forge]\nname: b\n")
    assert error(path) == f"{path}: duplicate key `name` at line 3; keep one of them"


def test_unsupported_pip_option(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - pip:\n    - -e ./src\n")
    assert error(path) == (
        f"`dependencies.pip`: '-e ./src' in {path} is not supported; list packages and "
        "--index-url/--extra-index-url/--find-links/--pre only"
    )


def test_pip_option_without_url(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - pip:\n    - --index-url\n")
    assert error(path) == f"`dependencies.pip`: --index-url in {path} needs a URL"


def test_invalid_pip_package_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - pip:\n    - foo bar baz\n")
    assert error(path).startswith(
        f"`python.pip.packages` in {path}: entry 0: 'foo bar baz' is not a valid requirement ("
    )


def test_folder_name_is_made_a_valid_name(tmp_path: Path) -> None:
    path = write(tmp_path / "my env", "dependencies: [numpy]\n")
    assert conda_env.load(path).definition.name == "my-env"


def test_empty_pip_item_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: e\ndependencies:\n  - pip:\n    -\n    - requests\n")
    with pytest.raises(InvalidDefinition, match="pip"):
        conda_env.load(path)


@pytest.mark.parametrize("value", ["", "11.10", "yes"])
def test_variables_keep_their_text_or_are_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"name: e\nvariables:\n  V: {value}\n")
    try:
        loaded = conda_env.load(path).definition.environment_variables
    except InvalidDefinition as exc:
        assert "variables" in exc.message
    else:
        assert loaded == {"V": value}


# Round trip ------------------------------------------------------------------------------------

PIP = [
    "requests==2.31.0",
    "pandas[excel]>=2,<3",
    "numpy",
    "attrs; python_version >= '3.8'",
    'tomli ; python_version < "3.11"',
    "pkg @ https://files.example.com/pkg-1.0.tar.gz",
    "git+https://github.com/org/tool.git@v1#egg=tool",
    f"torch==2.3.0 --hash=sha256:{HASH}",
]
CONDA = [
    "numpy=1.26",
    "scikit-learn",
    "conda-forge::scipy>=1.11",
    "libgcc-ng 13.2.0",
    "openssl=3.*",
    "pip",
    "python=3.12",
    "python>=3.9",
]
URLS = ["https://pkgs.example/simple", "https://user:${TOKEN}@private.example/simple"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


def some(values: list[str], max_size: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=max_size)


@st.composite
def definitions(draw: st.DrawFn) -> EnvironmentDefinition:
    pip = {
        "packages": draw(some(PIP)),
        "index_url": draw(st.none() | st.sampled_from(URLS)),
        "extra_index_urls": draw(some(URLS, 2)),
        "find_links": draw(some(["https://links.example/all.html"], 1)),
        "pre": draw(st.booleans()),
    }
    python = {
        "version": draw(st.sampled_from([None, "3", "3.10", "3.11.7"])),
        "conda": {
            "channels": draw(some(["conda-forge", "anaconda", "nvidia"])),
            "packages": draw(some(CONDA)),
        },
        "pip": pip,
    }
    variables = st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), TEXT, max_size=3
    )
    name = draw(st.sampled_from(["env", "train-env", "Kiln-x.1"]))
    return EnvironmentDefinition.model_validate(
        {"name": name, "python": python, "environment_variables": draw(variables)}
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_write_then_read_is_the_identity(definition: EnvironmentDefinition) -> None:
    with tempfile.TemporaryDirectory() as folder:
        d1 = conda_env.load(conda_env.save(definition, Path(folder, "one"))[0]).definition
        d2 = conda_env.load(conda_env.save(d1, Path(folder, "two"))[0]).definition
    assert d1 == d2
    assert build_hash(d1) == build_hash(d2)
    assert d1.environment_variables == definition.environment_variables
    assert d1.python.pip == definition.python.pip


def test_dropped_fields_names_what_a_conda_file_cannot_hold() -> None:
    definition = EnvironmentDefinition.model_validate(
        {
            "name": "x",
            "python": {"version": "3.11"},
            "docker": {"shm_size": "8g"},
            "inference_config": {"scoring_route": {"path": "/score", "port": 5001}},
            "asset_id": "azureml://x",
        }
    )
    assert conda_env.dropped_fields(definition) == ["docker", "inference_config", "asset_id"]
    plain = EnvironmentDefinition.model_validate({"name": "x", "python": {"version": "3.11"}})
    assert conda_env.dropped_fields(plain) == []
