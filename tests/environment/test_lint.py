"""lint: advice on what makes a definition drift (unpinned packages and images), contradict
itself (duplicates, conflicting pins) or leak (secrets in plain text)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.environment.lint import Finding, lint
from kiln.environment.validation import validate_definition


def findings(
    pip: list[str] | None = None,
    conda: list[str] | None = None,
    image: str | None = "python:3.11-slim",
    variables: dict[str, str] | None = None,
    stored: bool = False,  # read back from a registry that predates the refusal of secrets
    **python: Any,
) -> list[Finding]:
    definition = validate_definition(
        {
            "name": "demo",
            "python": {
                "version": "3.11",
                "conda": {"packages": conda or []},
                "pip": {"packages": pip or []},
                **python,
            },
            "docker": {"base_image": image},
            "environment_variables": variables or {},
        },
        stored=stored,
    )
    return lint(definition)


def fields(found: list[Finding]) -> list[str]:
    return [f.field for f in found]


def test_a_fully_pinned_definition_is_clean() -> None:
    clean = findings(
        pip=["numpy==1.26.4", "requests[socks]==2.32.3 ; python_version >= '3.8'"],
        conda=["mkl=2024.0", "tbb 2021.12.0 h1234_0", "python", "pip"],
        image="python:3.11-slim",
        variables={"MODE": "fast", "API_TOKEN": "${API_TOKEN}"},
    )

    assert clean == []


def test_unpinned_pip_packages_are_warnings_that_say_how_to_pin() -> None:
    found = findings(pip=["numpy", "requests>=2", "pandas==2.*", "six==1.16.0"])

    assert found == [
        Finding("warning", "python.pip.packages[0]", "'numpy' is not pinned; write numpy==VERSION"),
        Finding(
            "warning",
            "python.pip.packages[1]",
            "'requests>=2' is not pinned; write requests==VERSION",
        ),
        Finding(
            "warning",
            "python.pip.packages[2]",
            "'pandas==2.*' is not pinned; write pandas==VERSION",
        ),
    ]


def test_unpinned_conda_packages_are_flagged_but_python_and_pip_are_not() -> None:
    found = findings(conda=["python", "pip", "numpy", "conda-forge::scipy>=1.10", "mkl=2024.0"])

    assert found == [
        Finding(
            "warning", "python.conda.packages[2]", "'numpy' is not pinned; write numpy=VERSION"
        ),
        Finding(
            "warning",
            "python.conda.packages[3]",
            "'conda-forge::scipy>=1.10' is not pinned; write scipy=VERSION",
        ),
    ]


def test_files_and_direct_references_are_pinned_to_one_artifact() -> None:
    found = findings(
        pip=[
            "https://files.example/demo-1.0-py3-none-any.whl",
            "demo @ https://files.example/demo-1.0-py3-none-any.whl",
        ]
    )

    assert found == []


def test_a_package_listed_twice_is_a_warning() -> None:
    found = findings(pip=["numpy==1.26.4", "requests==2.32.3", "NumPy==1.26.4"])

    assert found == [
        Finding(
            "warning",
            "python.pip.packages[2]",
            "numpy is listed twice (also python.pip.packages[0])",
        )
    ]


def test_conflicting_pins_between_pip_and_conda_are_an_error() -> None:
    found = findings(pip=["numpy==1.25"], conda=["numpy=1.26"])

    assert found == [
        Finding(
            "error",
            "python.conda.packages[0]",
            "numpy is pinned to 1.26 here and to 1.25 in python.pip.packages[0]; keep one pin",
        )
    ]


def test_conflicting_pins_within_pip_are_an_error_as_well_as_a_duplicate() -> None:
    found = findings(pip=["six==1.15.0", "six==1.16.0"])

    assert [(f.level, f.field) for f in found] == [
        ("warning", "python.pip.packages[1]"),
        ("error", "python.pip.packages[1]"),
    ]


@pytest.mark.parametrize(
    ("pip", "conda"),
    [
        ("numpy==1.26.4", "numpy=1.26"),  # conda's NAME=1.26 is any 1.26.x
        ("numpy==1.26.4", "numpy=1.26.4=py311h64a7726_0"),  # a build string is no version
        ("numpy==1.26.4", "numpy 1.26.4 py311h64a7726_0"),
        ("numpy==1.26", "numpy==1.26.0"),  # one version, two spellings
        ("PyYAML==6.0.1", "pyyaml=6.0.1"),  # pip and conda names meet after normalizing
    ],
)
def test_pins_that_one_version_satisfies_do_not_conflict(pip: str, conda: str) -> None:
    assert findings(pip=[pip], conda=[conda]) == []


@pytest.mark.parametrize(
    ("image", "wording"),
    [
        ("python", "'python' has no tag; pin a tag or a digest"),
        ("localhost:5000/team/python", "has no tag"),
        ("python:latest", "'python:latest' uses 'latest', which moves; pin a tag or a digest"),
    ],
)
def test_a_base_image_without_a_fixed_tag_is_a_warning(image: str, wording: str) -> None:
    (found,) = findings(image=image)

    assert (found.level, found.field) == ("warning", "docker.base_image")
    assert wording in found.message


@pytest.mark.parametrize(
    "image",
    [
        "python:3.11-slim",
        "localhost:5000/team/python:3.11",
        "python@sha256:" + "a" * 64,
        "python:latest@sha256:" + "b" * 64,
    ],
)
def test_a_tagged_or_digest_pinned_image_is_fine(image: str) -> None:
    assert findings(image=image) == []


def test_a_secret_looking_variable_with_a_literal_value_is_an_error() -> None:
    found = findings(
        variables={"API_TOKEN": "abc123", "DB_PASSWORD": "${DB_PASSWORD}", "MODE": "fast"},
        stored=True,
    )

    assert found == [
        Finding(
            "error",
            "environment_variables.API_TOKEN",
            "API_TOKEN looks like a secret stored in plain text; write API_TOKEN: ${API_TOKEN} "
            "and set it where the environment runs",
        )
    ]
    assert "abc123" not in found[0].message


def test_user_managed_with_packages_is_a_warning() -> None:
    found = findings(pip=["numpy==1.26.4"], user_managed=True)

    assert found == [
        Finding(
            "warning",
            "python.user_managed",
            "packages are listed but user_managed is true, so Kiln installs none of them",
        )
    ]
    assert findings(user_managed=True) == []


def test_findings_serialize_as_plain_dicts() -> None:
    (found,) = findings(image="python")

    assert found.as_dict() == {
        "level": "warning",
        "field": "docker.base_image",
        "message": "'python' has no tag; pin a tag or a digest",
    }
