"""Azure ML's R section: made as azureml-core code makes it, validated, stored in the registry
and in Kiln YAML, part of the build hash; a build refuses it with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builders.base import BuildError
from kiln.errors import InvalidDefinition
from kiln.sdk.environment import Environment, RCranPackage, RGitHubPackage, RSection
from kiln.workspace import Workspace


def r_environment() -> Environment:
    env = Environment("r-env")
    env.r = RSection()
    env.r.r_version = "4.0.2"
    env.r.snapshot_date = "2020-08-01"
    cran = RCranPackage()
    cran.name, cran.version = "ggplot2", "3.3.2"
    github = RGitHubPackage()
    github.repository, github.auth_token = "team/tool@v1", "${GITHUB_TOKEN}"
    env.r.cran_packages = [cran]
    env.r.github_packages = [github]
    return env


def test_an_r_section_made_as_in_azure_ml_is_stored() -> None:
    assert Environment("plain").r is None

    r = r_environment().definition.r

    assert r is not None
    assert (r.r_version, r.snapshot_date, r.user_managed) == ("4.0.2", "2020-08-01", False)
    assert [(p.name, p.version) for p in r.cran_packages] == [("ggplot2", "3.3.2")]
    assert [(p.repository, p.auth_token) for p in r.github_packages] == [
        ("team/tool@v1", "${GITHUB_TOKEN}")
    ]


def test_r_packages_change_the_build_and_an_empty_section_does_not() -> None:
    plain, empty = Environment("a"), Environment("a")
    empty.r = RSection()

    assert empty.build_hash == plain.build_hash
    assert r_environment().build_hash != plain.build_hash


def test_a_plain_token_and_a_nameless_package_are_refused() -> None:
    env = r_environment()
    github = RGitHubPackage()
    github.repository, github.auth_token = "team/tool", "ghp_plain"

    with pytest.raises(InvalidDefinition, match=r"`r\.github_packages\[0\]\.auth_token`"):
        env.r.github_packages = [github]  # type: ignore[union-attr]
    with pytest.raises(InvalidDefinition, match=r"`r\.cran_packages\[0\]\.name`"):
        env.r.cran_packages = [RCranPackage()]  # type: ignore[union-attr]
    assert env.definition.r is not None and env.definition.r.github_packages[0].auth_token == (
        "${GITHUB_TOKEN}"
    )


def test_the_registry_and_kiln_yaml_keep_it(workspace: Workspace, tmp_path: Path) -> None:
    env = r_environment()

    got = Environment.get(workspace, env.register(workspace).name)
    env.save_to_directory(tmp_path, format="kiln")
    loaded = Environment.load_from_directory(tmp_path)

    assert got.definition.r == env.definition.r == loaded.definition.r
    assert got.build_hash == env.build_hash == loaded.build_hash


def test_a_format_without_it_says_it_is_left_out(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="the R section .* is kept only by format='kiln'"):
        r_environment().save_to_directory(tmp_path)


def test_a_build_refuses_it_with_one_line(workspace: Workspace) -> None:
    env = r_environment()

    with pytest.raises(BuildError) as caught:
        env.build_local(workspace, show_output=False)

    assert str(caught.value) == (
        "r-env:1 has an R section (`r`), and Kiln builds Python environments only: remove `r` "
        "to build it here (Kiln keeps it to export the definition to Azure ML)"
    )


def test_the_fast_show_path_reads_it_as_the_full_one(workspace: Workspace) -> None:
    import json

    from kiln import catalog
    from kiln.environment.stored import yaml_data
    from kiln.formats import kiln_yaml

    record = catalog.get(workspace, r_environment().register(workspace).name)

    stored = json.loads(record._json or "{}")
    fast = yaml_data(
        stored,
        name=record.name,
        version=str(record.version),
        description=record.description,
        tags=record.tags,
    )
    assert repr(fast) == repr(kiln_yaml.to_data(record.definition))
    assert "r" in fast
