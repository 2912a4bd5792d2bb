"""A plain ``http://`` package source (issue 15, item 11) was accepted while ``--trusted-host``
was refused with "serve the index over https". Every place a definition names a package
source (index_url, extra_index_urls, find_links, conda channels), in every format, now refuses
plain http with that fix; loopback hosts stay allowed (the tests serve indexes on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiln.environment.definition import STORED, EnvironmentDefinition
from kilntesting.cli import run_kiln

FIX = "serve the index over https"


def _python(**pip: Any) -> dict[str, Any]:
    return {"name": "web", "python": {"version": "3.11", "pip": pip}}


@pytest.mark.parametrize(
    "data",
    [
        _python(index_url="http://pypi.example.com/simple"),
        _python(extra_index_urls=["https://ok.example/simple", "http://10.0.0.8:8080/simple"]),
        _python(find_links=["HTTP://wheels.example/links/"]),
        _python(index_url="http://user:${TOKEN}@pypi.example.com/simple"),
        {"name": "web", "python": {"conda": {"channels": ["http://conda.example/main"]}}},
    ],
    ids=["index", "extra-index", "find-links", "with-credentials", "conda-channel"],
)
def test_a_plain_http_source_is_refused_with_the_fix(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=FIX) as caught:
        EnvironmentDefinition.model_validate(data)
    assert "@pypi" not in str(caught.value).split("Value error, ")[1].split("[")[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/simple",
        "http://127.8.9.10/simple",
        "http://localhost:9/simple",
        "http://LOCALHOST/simple",
        "http://[::1]:8000/simple",
        "https://pypi.example.com/simple",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    definition = EnvironmentDefinition.model_validate(
        _python(index_url=url, extra_index_urls=[url], find_links=[url])
    )
    assert definition.python.pip.index_url == url


def test_a_stored_definition_with_an_http_index_stays_readable() -> None:
    """A row registered before this rule must still be shown, diffed and exported."""
    data = _python(index_url="http://pypi.example.com/simple")
    definition = EnvironmentDefinition.model_validate(data, context={STORED: True})
    assert definition.python.pip.index_url == "http://pypi.example.com/simple"


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("requirements.txt", "-i http://pypi.example.com/simple\nsix==1.16.0\n"),
        ("requirements.txt", "--extra-index-url http://pypi.example.com/simple\nsix\n"),
        ("environment.yml", "name: c\nchannels: [http://conda.example/c]\ndependencies: [six]\n"),
    ],
)
def test_the_cli_refuses_plain_http_in_one_line_and_registers_nothing(
    tmp_path: Path, file: str, text: str
) -> None:
    run_kiln("init", str(tmp_path))
    (tmp_path / file).write_text(text)
    result = run_kiln("env", "register", "-f", file, "-n", "web", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "is plain http" in line and FIX in line
    assert "web" not in run_kiln("env", "list", cwd=tmp_path).stdout
