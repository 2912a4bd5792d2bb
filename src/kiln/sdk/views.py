"""Azure ML's attribute names over Kiln's definition sections (``env.python``, ``env.docker``,
``env.spark``): each assignment goes through ``validation.assign``, so a bad value raises
``InvalidDefinition`` naming the field and changes nothing."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from kiln.environment.definition import DockerSection, PythonSection, RegistryRef
from kiln.environment.validation import assign
from kiln.sdk.conda_dependencies import CondaDependencies
from kiln.sdk.sections import plain


class SectionView:
    """One part of the definition under Azure ML's attribute names; assignments are validated."""

    _aliases: ClassVar[dict[str, str]] = {}
    _section: Any
    _where: str

    def __init__(self, section: BaseModel, where: str) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_where", where)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._section, self._aliases.get(name, name))

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (SectionView, RegistryView)):
            value = value.model()
        value = plain(value)
        assign(self._section, self._aliases.get(name, name), value, where=self._where)

    def model(self) -> BaseModel | None:
        """The part of the definition this view shows."""
        section: BaseModel = self._section
        return section

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._section!r})"


class RegistryView:
    """``env.docker.base_image_registry``: ``address``, ``username`` and ``password`` (only
    ever a ``${VAR}`` reference). Reading it changes nothing; the first assignment creates it."""

    __slots__ = ("_docker",)

    def __init__(self, docker: DockerSection) -> None:
        object.__setattr__(self, "_docker", docker)

    def __getattr__(self, name: str) -> Any:
        registry = self._docker.base_image_registry
        if registry is None and name in RegistryRef.model_fields:
            return None
        return getattr(registry if registry is not None else RegistryRef(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        registry = self._docker.base_image_registry
        if registry is None:
            assign(self._docker, "base_image_registry", {name: value}, where="docker")
        else:
            assign(registry, name, value, where="docker.base_image_registry")

    def model(self) -> BaseModel | None:
        registry: RegistryRef | None = self._docker.base_image_registry
        return registry

    def __repr__(self) -> str:
        return f"RegistryView({self._docker.base_image_registry!r})"


class DockerView(SectionView):
    """``env.docker``: ``base_image``, ``base_dockerfile``, ``base_image_registry``, ..."""

    _aliases: ClassVar[dict[str, str]] = {"base_dockerfile": "dockerfile"}

    @property
    def base_image_registry(self) -> RegistryView:
        return RegistryView(self._section)


class PythonView:
    """``env.python``: Azure ML's names over the python section."""

    __slots__ = ("_section",)

    def __init__(self, section: PythonSection) -> None:
        self._section = section

    @property
    def user_managed_dependencies(self) -> bool:
        return self._section.user_managed

    @user_managed_dependencies.setter
    def user_managed_dependencies(self, value: bool) -> None:
        assign(self._section, "user_managed", value, where="python")

    @property
    def interpreter_path(self) -> str | None:
        return self._section.interpreter_path

    @interpreter_path.setter
    def interpreter_path(self, value: str | None) -> None:
        assign(self._section, "interpreter_path", value, where="python")

    @property
    def conda_dependencies(self) -> CondaDependencies:
        """A live editor: ``env.python.conda_dependencies.add_pip_package(...)`` changes env."""
        return CondaDependencies(_section=self._section)

    @conda_dependencies.setter
    def conda_dependencies(self, value: CondaDependencies) -> None:
        source = value._section
        assign(self._section, "version", source.version, where="python")
        assign(self._section, "conda", source.conda.model_copy(deep=True), where="python")
        assign(self._section, "pip", source.pip.model_copy(deep=True), where="python")
