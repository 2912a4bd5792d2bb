"""``Environment``: the SDK object Azure ML users know, over Kiln's definition model and core.

Attribute names follow Azure ML (``env.python.conda_dependencies``, ``env.docker.base_image``,
``env.environment_variables``, ...); every assignment is validated at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.environment.conda_dependencies import CondaDependencies
from kiln.environment.definition import (
    DockerSection,
    EnvironmentDefinition,
    PythonSection,
    RegistryRef,
    SparkSection,
)
from kiln.environment.validation import validate_definition

if TYPE_CHECKING:
    from kiln.environment.catalog import EnvironmentRecord
    from kiln.workspace import Workspace


class PythonView:
    """``env.python``: Azure ML's names over the python section."""

    def __init__(self, section: PythonSection) -> None:
        self._section = section

    @property
    def user_managed_dependencies(self) -> bool:
        return self._section.user_managed

    @user_managed_dependencies.setter
    def user_managed_dependencies(self, value: bool) -> None:
        self._section.user_managed = value

    @property
    def interpreter_path(self) -> str | None:
        return self._section.interpreter_path

    @interpreter_path.setter
    def interpreter_path(self, value: str | None) -> None:
        self._section.interpreter_path = value

    @property
    def conda_dependencies(self) -> CondaDependencies:
        return CondaDependencies(_section=self._section)

    @conda_dependencies.setter
    def conda_dependencies(self, value: CondaDependencies) -> None:
        source = value._section
        self._section.version = source.version
        self._section.conda = source.conda.model_copy(deep=True)
        self._section.pip = source.pip.model_copy(deep=True)


class DockerView:
    """``env.docker``: Azure ML's names over the docker section."""

    def __init__(self, section: DockerSection) -> None:
        self._section = section

    def __getattr__(self, name: str) -> Any:
        return getattr(self._section, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_section":
            object.__setattr__(self, name, value)
        elif name == "base_dockerfile":
            self._section.dockerfile = value
        else:
            setattr(self._section, name, value)

    @property
    def base_dockerfile(self) -> str | None:
        return self._section.dockerfile

    @property
    def base_image_registry(self) -> RegistryRef:
        if self._section.base_image_registry is None:
            self._section.base_image_registry = RegistryRef()
        registry = self._section.base_image_registry
        assert registry is not None
        return registry


class Environment:
    """An environment definition you can edit, register, save and load."""

    def __init__(self, name: str, *, _definition: EnvironmentDefinition | None = None, _source_dir: Path | None = None) -> None:
        self._definition = _definition if _definition is not None else validate_definition({"name": name})
        self._source_dir = _source_dir

    # Fields with Azure ML's names
    @property
    def name(self) -> str:
        return self._definition.name

    @name.setter
    def name(self, value: str) -> None:
        self._definition.name = value

    @property
    def version(self) -> str | None:
        return self._definition.version

    @version.setter
    def version(self, value: str | None) -> None:
        self._definition.version = value

    @property
    def description(self) -> str | None:
        return self._definition.description

    @description.setter
    def description(self, value: str | None) -> None:
        self._definition.description = value

    @property
    def tags(self) -> dict[str, str]:
        return self._definition.tags

    @tags.setter
    def tags(self, value: dict[str, str]) -> None:
        self._definition.tags = value

    @property
    def environment_variables(self) -> dict[str, str]:
        return self._definition.environment_variables

    @environment_variables.setter
    def environment_variables(self, value: dict[str, str]) -> None:
        self._definition.environment_variables = value

    @property
    def inferencing_stack_version(self) -> str | None:
        return self._definition.inferencing_stack_version

    @inferencing_stack_version.setter
    def inferencing_stack_version(self, value: str | None) -> None:
        self._definition.inferencing_stack_version = value

    @property
    def python(self) -> PythonView:
        return PythonView(self._definition.python)

    @property
    def docker(self) -> DockerView:
        return DockerView(self._definition.docker)

    @property
    def spark(self) -> SparkSection:
        return self._definition.spark

    # Identity
    @property
    def definition(self) -> EnvironmentDefinition:
        """A validated copy of the definition as it stands now."""
        definition = validate_definition(self._definition.model_dump(), source=f"environment {self.name!r}")
        if self._source_dir is not None:
            from kiln.formats.base import resolve_local_inputs

            definition = resolve_local_inputs(definition, self._source_dir)
        return definition

    @property
    def build_hash(self) -> str:
        from kiln.environment.canonical import build_hash

        return build_hash(self.definition)

    @property
    def definition_digest(self) -> str:
        from kiln.environment.canonical import definition_digest

        return definition_digest(self.definition)

    # Registry
    def register(self, workspace: Workspace) -> Environment:
        """Register in ``workspace``; identical content returns the existing version."""
        from kiln.environment import catalog

        result = catalog.register(workspace, self.definition, source_dir=self._source_dir)
        registered = Environment._from_record(result.record)
        registered.created = result.created
        return registered

    created: bool | None = None
    """After ``register``: True when a new version was made, False when content was unchanged."""

    @staticmethod
    def get(workspace: Workspace, name: str, version: str | None = None) -> Environment:
        from kiln.environment import catalog

        return Environment._from_record(catalog.get(workspace, name, version))

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """The latest version of each environment, curated ones included, by name."""
        from kiln.environment import catalog

        return {r.name: Environment._from_record(r) for r in catalog.list_records(workspace)}

    @staticmethod
    def _from_record(record: EnvironmentRecord) -> Environment:
        return Environment(record.name, _definition=record.definition.model_copy(deep=True))

    # Files
    def save_to_directory(self, path: str | os.PathLike[str], format: str = "kiln", overwrite: bool = False) -> list[Path]:  # noqa: A002
        from kiln.errors import Conflict
        from kiln.formats.dispatch import DIRECTORY_MARKERS, save_definition

        target = Path(path)
        if not overwrite and any((target / m).exists() for m, _ in DIRECTORY_MARKERS):
            raise Conflict(f"{target} already holds a definition; pass overwrite=True to replace it")
        return save_definition(self.definition, target, format, source_dir=self._source_dir)

    @staticmethod
    def load_from_directory(path: str | os.PathLike[str]) -> Environment:
        from kiln.formats.dispatch import load_path

        loaded = load_path(Path(path))
        source = Path(path) if Path(path).is_dir() else Path(path).parent
        return Environment(loaded.definition.name, _definition=loaded.definition, _source_dir=source)

    # Constructors with Azure ML's names
    @staticmethod
    def from_pip_requirements(name: str, file_path: str | os.PathLike[str]) -> Environment:
        from kiln.formats import requirements

        loaded = requirements.load(Path(file_path), name=name)
        return Environment(name, _definition=loaded.definition, _source_dir=Path(file_path).parent)

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        from kiln.formats import conda_env

        definition = conda_env.load(Path(file_path)).definition
        definition.name = name
        return Environment(name, _definition=definition, _source_dir=Path(file_path).parent)

    @staticmethod
    def from_existing_environment(name: str, prefix_or_interpreter: str | os.PathLike[str]) -> Environment:
        """Freeze what is installed in an existing virtualenv or conda prefix."""
        from kiln.environment.freeze import freeze

        frozen = freeze(Path(prefix_or_interpreter))
        env = Environment(name)
        env._definition.python = PythonSection.model_validate(
            {"version": frozen.python_version, "conda": {"packages": frozen.conda_packages}, "pip": {"packages": frozen.pip_packages}}
        )
        return env

    @staticmethod
    def from_docker_image(name: str, image: str, conda_file: str | os.PathLike[str] | None = None) -> Environment:
        env = Environment.from_conda_specification(name, conda_file) if conda_file else Environment(name)
        env._definition.docker = DockerSection(base_image=image)
        return env

    @staticmethod
    def from_dockerfile(name: str, dockerfile: str | os.PathLike[str], conda_specification: str | os.PathLike[str] | None = None) -> Environment:
        """``dockerfile`` is a path to a Dockerfile or the Dockerfile text itself."""
        from kiln.environment.files import read_text_limited

        text = str(dockerfile)
        candidate = Path(dockerfile)
        if "\n" not in text and candidate.is_file():
            text = read_text_limited(candidate, field="dockerfile")
        env = Environment.from_conda_specification(name, conda_specification) if conda_specification else Environment(name)
        env._definition.docker = DockerSection(dockerfile=text)
        return env

    def clone(self, new_name: str) -> Environment:
        """An editable copy under a new name, with no version (curated origins included)."""
        definition = self.definition.model_copy(deep=True, update={"version": None})
        definition.name = new_name
        definition.tags = {k: v for k, v in definition.tags.items() if k != "curated"}
        return Environment(new_name, _definition=definition, _source_dir=self._source_dir)

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"
