"""Azure ML's reserved name prefixes (``AzureML-``, ``Microsoft``) are refused at register, by
the core (so by every face), pointing at Kiln's curated equivalent when there is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln import Environment, catalog
from kiln.curated import definitions, equivalent_of
from kiln.errors import ReadOnly
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln


@pytest.mark.parametrize(
    ("name", "equivalent"),
    [
        ("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "Kiln-sklearn-pandas-py311"),
        ("AzureML-Minimal", "Kiln-minimal-py311"),
        ("AzureML-minimal-ubuntu20.04-py38-cpu-inference", "Kiln-inference-py311"),
        ("AzureML-ACPT-pytorch-1.13-py38-cuda11.7-gpu", "Kiln-pytorch-cpu-py311"),
        ("AzureML-tensorflow-2.12-cuda11", None),
        ("Microsoft-tools", None),
    ],
)
def test_the_curated_equivalent_is_named(name: str, equivalent: str | None) -> None:
    assert equivalent_of(name) == equivalent
    assert equivalent is None or equivalent in {d.name for d in definitions()}


def test_the_sdk_refuses_an_azure_ml_curated_name_and_points_at_kilns(
    workspace: Workspace,
) -> None:
    env = Environment("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")

    with pytest.raises(ReadOnly) as caught:
        env.register(workspace)

    assert caught.value.message == (
        "`name`: 'AzureML-sklearn-1.0-ubuntu20.04-py38-cpu' uses the reserved prefix 'AzureML-' "
        "of Azure ML's curated environments; register it as 'sklearn-1.0-ubuntu20.04-py38-cpu' "
        "(env.clone('sklearn-1.0-ubuntu20.04-py38-cpu')), or start from Kiln's curated "
        "Kiln-sklearn-pandas-py311"
    )
    assert catalog.list_records(workspace, include_curated=False) == []


def test_a_microsoft_name_without_an_equivalent_gets_the_rename(workspace: Workspace) -> None:
    with pytest.raises(ReadOnly, match=r"register it as 'Tools' \(env.clone\('Tools'\)\)$"):
        Environment("MicrosoftTools").register(workspace)


def test_names_that_only_look_alike_are_registered(workspace: Workspace) -> None:
    for name in ("AzureMLish", "my-AzureML-env", "microsoft-lowercase"):
        assert Environment(name).register(workspace).version == "1"


def test_the_cli_refuses_the_same_way(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path / "ws"))
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")

    result = run_kiln(
        "--workspace",
        str(tmp_path / "ws"),
        "env",
        "register",
        "-f",
        str(tmp_path / "requirements.txt"),
        "-n",
        "AzureML-Minimal",
        check=False,
    )

    assert result.returncode == 4
    assert "uses the reserved prefix 'AzureML-' of Azure ML's curated environments" in result.stderr
    assert "start from Kiln's curated Kiln-minimal-py311" in result.stderr
