"""uv's index options (``--index-url`` and the like) from a definition's ``python.pip``."""

from __future__ import annotations

from typing import Protocol

from kiln.secrets import expand


class IndexOptions(Protocol):
    """What uv's index options come from: ``python.pip`` of a definition, or the same fields
    read from a stored one without the model (kiln.fastbuild)."""

    @property
    def index_url(self) -> str | None: ...
    @property
    def extra_index_urls(self) -> list[str]: ...
    @property
    def find_links(self) -> list[str]: ...
    @property
    def pre(self) -> bool: ...


def index_args(pip: IndexOptions, secrets: dict[str, str]) -> list[str]:
    """uv's index options, with ``${VAR}`` references expanded from ``secrets``."""
    args = ["--index-url", expand(pip.index_url, secrets)] if pip.index_url else []
    for url in pip.extra_index_urls:
        args += ["--extra-index-url", expand(url, secrets)]
    for url in pip.find_links:
        args += ["--find-links", expand(url, secrets)]
    return args + (["--prerelease", "allow"] if pip.pre else [])
