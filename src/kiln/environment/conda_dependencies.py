"""``CondaDependencies``: the Azure ML SDK's editor of the python section, over Kiln's model.

Every change is validated as it is made (the model validates on assignment), so a bad package
string fails at the line that adds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kiln.environment.definition import EnvironmentDefinition, PythonSection
from kiln.environment.packages import parse_conda_entry, parse_pip_entry


class CondaDependencies:
    def __init__(self, conda_dependencies_file_path: str | Path | None = None, *, _section: PythonSection | None = None) -> None:
        if conda_dependencies_file_path is not None:
            from kiln.formats import conda_env

            _section = conda_env.load(Path(conda_dependencies_file_path)).definition.python
        self._section = _section if _section is not None else PythonSection()

    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,  # noqa: ARG004 - accepted for Azure ML compatibility
    ) -> CondaDependencies:
        deps = CondaDependencies()
        if python_version:
            deps.set_python_version(python_version)
        for package in conda_packages or []:
            deps.add_conda_package(package)
        for package in pip_packages or []:
            deps.add_pip_package(package)
        if pip_indexurl:
            deps._section.pip.index_url = pip_indexurl
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
        self._section.version = version

    def add_conda_package(self, conda_package: str) -> None:
        name = parse_conda_entry(conda_package).name
        kept = [p for p in self._section.conda.packages if parse_conda_entry(p).name != name]
        self._section.conda.packages = [*kept, conda_package]

    def remove_conda_package(self, conda_package: str) -> None:
        name = parse_conda_entry(conda_package).name
        self._section.conda.packages = [p for p in self._section.conda.packages if parse_conda_entry(p).name != name]

    def add_pip_package(self, pip_package: str) -> None:
        key = _pip_key(pip_package)
        kept = [p for p in self._section.pip.packages if _pip_key(p) != key]
        self._section.pip.packages = [*kept, pip_package]

    def remove_pip_package(self, pip_package: str) -> None:
        key = _pip_key(pip_package)
        self._section.pip.packages = [p for p in self._section.pip.packages if _pip_key(p) != key]

    def add_channel(self, channel: str) -> None:
        if channel not in self._section.conda.channels:
            self._section.conda.channels = [*self._section.conda.channels, channel]

    def remove_channel(self, channel: str) -> None:
        self._section.conda.channels = [c for c in self._section.conda.channels if c != channel]

    def set_pip_index_url(self, url: str | None) -> None:
        self._section.pip.index_url = url

    def add_pip_extra_index_url(self, url: str) -> None:
        self._section.pip.extra_index_urls = [*self._section.pip.extra_index_urls, url]

    def serialize_to_string(self) -> str:
        """The conda ``environment.yml`` text, as Azure ML's SDK gives it."""
        from kiln.formats import conda_env
        from kiln.formats.base import dump_yaml

        definition = EnvironmentDefinition(name="project_environment", python=self._section)
        return dump_yaml(conda_env.python_to_spec(definition))

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        from kiln.formats.base import write_files_atomically

        write_files_atomically(target.parent, {target.name: self.serialize_to_string().encode()})
        return target

    def __repr__(self) -> str:
        return f"CondaDependencies(python={self._section.version!r}, conda={self.conda_packages}, pip={self.pip_packages})"


def _pip_key(entry: str) -> str:
    parsed = parse_pip_entry(entry)
    return parsed.name or parsed.text
