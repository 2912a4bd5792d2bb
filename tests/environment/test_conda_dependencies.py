"""CondaDependencies, the Azure ML editor of the python section: every change is validated at
the line that makes it, same-name packages are replaced (the new entry goes last, as in Azure
ML), and what it serializes is a conda file that reads back to the same content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kiln import CondaDependencies
from kiln.errors import InvalidDefinition


def make() -> CondaDependencies:
    return CondaDependencies.create(
        python_version="3.11",
        conda_packages=["numpy=1.26.4", "conda-forge::scipy=1.13.1"],
        pip_packages=["requests==2.32.3", "six==1.16.0"],
    )


def test_create_lists_what_it_was_given_and_adds_pip_to_conda() -> None:
    deps = make()

    assert deps.get_python_version() == "3.11"
    # conda installs pip itself when there are pip packages, as environment.yml needs.
    assert deps.conda_packages == ["numpy=1.26.4", "conda-forge::scipy=1.13.1", "pip"]
    assert deps.pip_packages == ["requests==2.32.3", "six==1.16.0"]
    assert deps.conda_channels == ["anaconda", "conda-forge"]  # azureml-core's defaults


def test_pip_only_dependencies_need_no_conda_packages() -> None:
    deps = CondaDependencies.create(python_version="3.11", pip_packages=["six==1.16.0"])

    assert deps.conda_packages == []


def test_create_with_an_index_url_sets_it() -> None:
    deps = CondaDependencies.create(pip_indexurl="https://pypi.example/simple")

    assert deps._section.pip.index_url == "https://pypi.example/simple"


def test_adding_a_listed_name_replaces_it_and_moves_it_last() -> None:
    deps = make()

    deps.add_pip_package("Requests==2.31.0")  # another spelling of the same name
    deps.add_conda_package("numpy=1.26.3")

    assert deps.pip_packages == ["six==1.16.0", "Requests==2.31.0"]
    assert deps.conda_packages == ["conda-forge::scipy=1.13.1", "pip", "numpy=1.26.3"]


def test_adding_an_entry_already_listed_changes_nothing() -> None:
    deps = make()

    deps.add_pip_package("requests==2.32.3")
    deps.add_conda_package("numpy=1.26.4")

    assert deps.pip_packages == ["requests==2.32.3", "six==1.16.0"]
    assert deps.conda_packages[0] == "numpy=1.26.4"


def test_remove_goes_by_name_whatever_the_version() -> None:
    deps = make()

    deps.remove_pip_package("REQUESTS")
    deps.remove_conda_package("scipy>=0")

    assert deps.pip_packages == ["six==1.16.0"]
    assert deps.conda_packages == ["numpy=1.26.4", "pip"]


def test_a_python_spec_added_as_a_conda_package_sets_the_version() -> None:
    deps = make()

    deps.add_conda_package("python=3.12")

    assert deps.get_python_version() == "3.12"
    assert not any(p.startswith("python") for p in deps.conda_packages)


def test_channels_are_added_once_in_order_and_removed() -> None:
    deps = CondaDependencies()

    deps.add_channel("conda-forge")
    deps.add_channel("defaults")
    deps.add_channel("conda-forge")
    assert deps.conda_channels == ["anaconda", "conda-forge", "defaults"]

    deps.remove_channel("conda-forge")
    assert deps.conda_channels == ["anaconda", "defaults"]


def test_set_python_version_replaces_it() -> None:
    deps = make()

    deps.set_python_version("3.10")

    assert deps.get_python_version() == "3.10"


@pytest.mark.parametrize(
    ("change", "field", "wording"),
    [
        (
            lambda d: d.add_pip_package("not valid!!"),
            "python.pip.packages",
            "not a valid requirement",
        ),
        (lambda d: d.add_pip_package("# a comment"), "python.pip.packages", "is a comment"),
        (
            lambda d: d.add_conda_package("numpy@1.0"),
            "python.conda.packages",
            "not a conda match spec",
        ),
        (lambda d: d.set_python_version("three"), "python.version", "'three' is not allowed"),
        (lambda d: d.add_channel("my channel"), "python.conda.channels", "without spaces"),
        (
            lambda d: d.set_pip_index_url("https://me:hunter2@pypi.example/simple"),
            "python.pip.index_url",
            "plain-text password",
        ),
    ],
)
def test_a_bad_change_fails_at_its_line_naming_the_field_and_changes_nothing(
    change: Callable[[CondaDependencies], object], field: str, wording: str
) -> None:
    deps = make()
    before = deps.serialize_to_string()

    with pytest.raises(InvalidDefinition) as caught:
        change(deps)

    assert caught.value.message.startswith(f"`{field}`"), caught.value.message
    assert wording in caught.value.message
    assert "hunter2" not in caught.value.message
    assert deps.serialize_to_string() == before


def test_serialize_to_string_is_a_conda_file_with_the_same_content() -> None:
    deps = make()
    deps.add_channel("conda-forge")

    parsed = yaml.safe_load(deps.serialize_to_string())

    assert parsed == {
        "name": "project_environment",
        "channels": ["anaconda", "conda-forge"],
        "dependencies": [
            "python=3.11",
            "numpy=1.26.4",
            "conda-forge::scipy=1.13.1",
            "pip",
            {"pip": ["requests==2.32.3", "six==1.16.0"]},
        ],
    }


def test_saved_file_loads_back_to_the_same_dependencies(tmp_path: Path) -> None:
    deps = make()
    deps.add_channel("conda-forge")

    path = deps.save(tmp_path / "conda_dependencies.yml")
    loaded = CondaDependencies(path)

    assert loaded.get_python_version() == "3.11"
    assert loaded.conda_channels == ["anaconda", "conda-forge"]
    assert loaded.conda_packages == deps.conda_packages
    assert loaded.pip_packages == deps.pip_packages


def test_loads_a_hand_written_conda_file(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(
        "name: hand-written\n"
        "channels: [conda-forge]\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - numpy=1.26.4\n"
        "  - pip\n"
        "  - pip:\n"
        "    - six==1.16.0\n"
    )

    deps = CondaDependencies(str(path))

    assert deps.get_python_version() == "3.11"
    assert deps.conda_channels == ["conda-forge"]
    assert deps.conda_packages == ["numpy=1.26.4", "pip"]
    assert deps.pip_packages == ["six==1.16.0"]


def test_extra_index_urls_are_added_in_order_and_serialized() -> None:
    deps = CondaDependencies.create(pip_packages=["numpy==2.4.6"])
    deps.add_pip_extra_index_url("https://one.example/simple")
    deps.add_pip_extra_index_url("https://two.example/simple")
    text = deps.serialize_to_string()
    assert text.index("--extra-index-url https://one.example/simple") < text.index(
        "--extra-index-url https://two.example/simple"
    )
    with pytest.raises(InvalidDefinition, match="plain-text password"):
        deps.add_pip_extra_index_url("https://me:hunter2@three.example/simple")
