"""``CondaDependencies``: the Azure ML SDK's editor of the python section, over Kiln's model.

A new one starts from azureml-core's defaults as Kiln has them (``kiln.sdk.defaults``): a
Python version and the channels ``anaconda`` and ``conda-forge``. Every change is validated as it is made, so a bad package string, channel or python version
fails at the line that makes it, with ``InvalidDefinition`` naming the field; a refused change
leaves the dependencies as they were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from kiln.environment.definition import EnvironmentDefinition, PythonSection
from kiln.environment.packages import conda_python_version, parse_conda_entry, parse_pip_entry
from kiln.environment.validation import assign
from kiln.errors import InvalidDefinition

T = TypeVar("T")


def _parsed(parse: Callable[[str], T], entry: str, where: str) -> T:
    try:
        return parse(entry)
    except ValueError as exc:
        raise InvalidDefinition(f"`{where}`: {exc}") from None


class CondaDependencies:
    """Python version, conda channels and packages, pip packages and options.

    Adding a package whose name is already listed replaces the old entry, and the new one goes
    to the end of the list, as in Azure ML (order is part of the build hash); adding an entry
    that is already listed as written changes nothing. When both conda packages and pip
    packages are listed, ``pip`` is kept among the conda packages (added at the end if
    missing), the way a conda ``environment.yml`` needs and writes it.
    """

    def __init__(
        self,
        conda_dependencies_file_path: str | Path | None = None,
        *,
        _section: PythonSection | None = None,
    ) -> None:
        if conda_dependencies_file_path is not None:
            from kiln.formats import conda_env

            _section = conda_env.load(Path(conda_dependencies_file_path)).definition.python
        if _section is None:
            from kiln.sdk.defaults import python_defaults

            _section = PythonSection.model_validate(python_defaults())
        self._section = _section

    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,  # accepted for Azure ML compatibility; Kiln adds no SDK
    ) -> CondaDependencies:
        deps = CondaDependencies()
        if python_version:
            deps.set_python_version(python_version)
        for package in conda_packages or []:
            deps.add_conda_package(package)
        for package in pip_packages or []:
            deps.add_pip_package(package)
        if pip_indexurl:
            deps.set_pip_index_url(pip_indexurl)
        return deps

    # Reading
    @property
    def conda_packages(self) -> list[str]:
        return list(self._section.conda.packages)

    @property
    def pip_packages(self) -> list[str]:
        return list(self._section.pip.packages)

    @property
    def conda_channels(self) -> list[str]:
        return list(self._section.conda.channels)

    def get_python_version(self) -> str | None:
        return self._section.version

    # Changing
    def set_python_version(self, version: str) -> None:
        assign(self._section, "version", version, where="python")

    def add_conda_package(self, conda_package: str) -> None:
        """Add a conda match spec; ``python=X`` sets the python version instead."""
        version = conda_python_version(conda_package)
        if version is not None:
            self.set_python_version(version)
            return
        entry = _parsed(parse_conda_entry, conda_package, "python.conda.packages")
        current = self._section.conda.packages
        if entry.text not in current:
            kept = [p for p in current if parse_conda_entry(p).name != entry.name]
            self._set_conda([*kept, entry.text])
        self._keep_pip()

    def remove_conda_package(self, conda_package: str) -> None:
        name = _parsed(parse_conda_entry, conda_package, "python.conda.packages").name
        current = self._section.conda.packages
        self._set_conda([p for p in current if parse_conda_entry(p).name != name])

    def add_pip_package(self, pip_package: str) -> None:
        entry = _parsed(parse_pip_entry, pip_package, "python.pip.packages")
        current = self._section.pip.packages
        if entry.text not in current:
            key = entry.name or entry.text
            kept = [p for p in current if _pip_key(p) != key]
            assign(self._section.pip, "packages", [*kept, entry.text], where="python.pip")
        self._keep_pip()

    def remove_pip_package(self, pip_package: str) -> None:
        entry = _parsed(parse_pip_entry, pip_package, "python.pip.packages")
        key = entry.name or entry.text
        kept = [p for p in self._section.pip.packages if _pip_key(p) != key]
        assign(self._section.pip, "packages", kept, where="python.pip")

    def add_channel(self, channel: str) -> None:
        if channel not in self._section.conda.channels:
            channels = [*self._section.conda.channels, channel]
            assign(self._section.conda, "channels", channels, where="python.conda")

    def remove_channel(self, channel: str) -> None:
        channels = [c for c in self._section.conda.channels if c != channel]
        assign(self._section.conda, "channels", channels, where="python.conda")

    def set_pip_index_url(self, url: str | None) -> None:
        """The index URL, given alone or as azureml-core takes it: ``--index-url URL``."""
        if url is not None and url.split(maxsplit=1)[0] in ("--index-url", "-i"):
            self.set_pip_option(url)
            return
        assign(self._section.pip, "index_url", url, where="python.pip")

    def set_pip_option(self, pip_option: str) -> None:
        """Set a pip option line (``--index-url URL``, ``--extra-index-url URL``,
        ``--find-links URL``, ``--pre``); as in azureml-core, it replaces the option of the
        same name."""
        # The conda file reader's own parser of pip lines: one meaning for an option line.
        from kiln.formats.conda_env import _pip_options as pip_options

        if not pip_option.strip().startswith("-"):
            raise InvalidDefinition(
                f"`python.pip`: {pip_option!r} is not a pip option (an option starts with -); "
                "add a package with add_pip_package"
            )
        _packages, options, _warnings = pip_options([pip_option], "set_pip_option")
        changes = {k: v for k, v in options.items() if k != "packages" and v}
        current = self._section.pip.model_dump()
        assign(self._section, "pip", {**current, **changes}, where="python")

    @property
    def pip_options(self) -> list[str]:
        """The pip option lines, as a conda file's ``pip:`` list holds them."""
        return [line for line in self._pip_lines() if line.startswith("-")]

    def add_pip_extra_index_url(self, url: str) -> None:
        urls = self._section.pip.extra_index_urls
        if url not in urls:
            assign(self._section.pip, "extra_index_urls", [*urls, url], where="python.pip")

    def _set_conda(self, packages: list[str]) -> None:
        assign(self._section.conda, "packages", packages, where="python.conda")

    def _keep_pip(self) -> None:
        """With conda and pip packages both listed, conda must install pip itself."""
        conda = self._section.conda.packages
        has_pip = any(parse_conda_entry(p).name == "pip" for p in conda)
        if conda and self._section.pip.packages and not has_pip:
            self._set_conda([*conda, "pip"])

    # Writing
    def as_dict(self) -> dict[str, Any]:
        """The conda file as plain data (``name``, ``channels``, ``dependencies`` with its
        ``pip:`` list), as azureml-core's ``as_dict``; changing it changes nothing here."""
        from kiln.formats import conda_env

        definition = EnvironmentDefinition(name="project_environment", python=self._section)
        return copy.deepcopy(conda_env.python_to_spec(definition))

    def serialize_to_string(self) -> str:
        """The conda ``environment.yml`` text, as Azure ML's SDK gives it."""
        from kiln.formats.base import dump_yaml

        return dump_yaml(self.as_dict())

    def _pip_lines(self) -> list[str]:
        for item in self.as_dict()["dependencies"]:
            if isinstance(item, dict):
                return list(item["pip"])
        return []

    def save(self, path: str | Path) -> Path:
        from kiln.formats.base import write_files_atomically

        target = Path(path)
        write_files_atomically(target.parent, {target.name: self.serialize_to_string().encode()})
        return target

    def __repr__(self) -> str:
        return (
            f"CondaDependencies(python={self._section.version!r}, "
            f"conda={self.conda_packages}, pip={self.pip_packages})"
        )


def _pip_key(entry: str) -> str:
    parsed = parse_pip_entry(entry)
    return parsed.name or parsed.text
