"""``Environment``: the SDK object Azure ML users know, over Kiln's definition model and core.

Attribute names follow Azure ML (``env.python.conda_dependencies``, ``env.docker.base_image``,
``env.environment_variables``, ...). Every assignment is validated at once: a bad value raises
``InvalidDefinition`` naming the field and leaves the environment as it was. Changes made
inside a mapping in place (``env.environment_variables["X"] = ...``) are checked when the
definition is next used (``register``, ``save_to_directory``, ``build_hash``).

An environment that came from a workspace (``get``, ``list``, ``register``) remembers it, so
local inputs it names (wheels, a build context) are read back from that workspace's artifact
store when it is saved elsewhere. Changing such an environment and registering it again makes
the next version, as in Azure ML, unless ``version`` was set to something else.
"""

from __future__ import annotations

import builtins
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.validation import assign, validate_definition
from kiln.errors import InvalidDefinition, InvalidRequest, InvalidType
from kiln.sdk.defaults import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE
from kiln.sdk.sections import RCranPackage, RGitHubPackage, RSection, SparkPackage, plain
from kiln.sdk.views import DockerView, PythonView, SectionView

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.sdk.environment_build import EnvironmentBuild
    from kiln.sdk.freeze import Frozen
    from kiln.workspace import Workspace

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "Environment",
    "RCranPackage",
    "RGitHubPackage",
    "RSection",
    "SparkPackage",
]

_DOCKERFILE_INSTRUCTIONS = {"FROM", "ARG"}
T = TypeVar("T")


class _Field(Generic[T]):
    """An attribute of the definition with the same name; assignments are validated."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, env: None, owner: type) -> _Field[T]: ...
    @overload
    def __get__(self, env: Environment, owner: type) -> T: ...
    def __get__(self, env: Environment | None, owner: type) -> _Field[T] | T:
        if env is None:
            return self
        value: T = getattr(env._definition, self.name)
        return value

    def __set__(self, env: Environment, value: T) -> None:
        env._set(self.name, value)


class Environment:
    """An environment definition you can edit, register, save and load."""

    created: bool | None = None
    """After ``register``: True when a new version was made, False when content was unchanged."""

    def __init__(
        self,
        name: str,
        *,
        _definition: EnvironmentDefinition | None = None,
        _source_dir: Path | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise InvalidType(
                f"`name`: expected a string, got {type(name).__name__} ({name!r}); name the "
                "environment with a str"
            )
        if _definition is None:
            from kiln.sdk.defaults import python_defaults

            _definition = validate_definition({"name": name, "python": python_defaults()})
        self._definition = _definition
        self._source_dir = _source_dir
        self._workspace: Workspace | None = None
        self._registered_version: str | None = None

    # Fields with Azure ML's names
    def _set(self, field: str, value: Any) -> None:
        assign(self._definition, field, value)

    name: _Field[str] = _Field()
    version: _Field[str | None] = _Field()
    description: _Field[str | None] = _Field()
    tags: _Field[dict[str, str]] = _Field()
    environment_variables: _Field[dict[str, str]] = _Field()
    inferencing_stack_version: _Field[str | None] = _Field()

    @property
    def python(self) -> PythonView:
        return PythonView(self._definition.python)

    @property
    def docker(self) -> DockerView:
        return DockerView(self._definition.docker, "docker")

    @property
    def spark(self) -> SectionView:
        return SectionView(self._definition.spark, "spark")

    @property
    def r(self) -> SectionView | None:
        """Azure ML's R section (None until set): stored and exported; a build refuses it."""
        section = self._definition.r
        return None if section is None else SectionView(section, "r")

    @r.setter
    def r(self, value: RSection | SectionView | dict[str, Any] | None) -> None:
        self._set("r", value.model() if isinstance(value, SectionView) else plain(value))

    # Identity
    @property
    def definition(self) -> EnvironmentDefinition:
        """A validated copy of the definition as it stands now."""
        definition = validate_definition(
            self._definition.model_dump(), source=f"environment {self.name!r}"
        )
        if self._source_dir is not None:
            from kiln.formats.base import resolve_local_inputs

            definition = resolve_local_inputs(definition, self._source_dir)
        elif definition.docker.git_context is not None:
            from kiln.formats.base import pin_git_context

            definition = pin_git_context(definition)  # its digests need the ref's commit
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
        from kiln import catalog

        definition = self.definition
        if self._registered_version is not None and definition.version == self._registered_version:
            # Got from the registry and the version left alone: a change is the next version.
            definition = definition.model_copy(update={"version": None})
        result = catalog.register(workspace, definition, source_dir=self._source_dir)
        registered = Environment._from_record(result.record, workspace)
        registered.created = result.created
        return registered

    def build(self, workspace: Workspace) -> EnvironmentBuild:
        """Build this environment in ``workspace`` (registering it first if needed), as in
        Azure ML: ``env.build(ws).wait_for_completion(show_output=True)``. A definition that
        names a base image is built into its image (``image_details`` on the result)."""
        from kiln.sdk.environment_build import EnvironmentBuild

        registered = self._registered_in(workspace)
        return EnvironmentBuild(workspace, registered.name, str(registered.version))

    def build_local(
        self,
        workspace: Workspace,
        platform: str | None = None,
        useDocker: bool | None = None,  # azureml-core's camelCase names
        pushImageToWorkspaceAcr: bool | None = None,
        *,
        use_docker: bool | None = None,
        push_image_to_workspace_registry: bool | None = None,
        show_output: bool = True,
    ) -> EnvironmentBuild:
        """Build now, on this machine, as azureml-core's ``build_local``: ``useDocker`` (or
        ``use_docker``) builds the image, on the definition's base image or the workspace's
        default one; otherwise only the Python part is built here. ``pushImageToWorkspaceAcr``
        (or ``push_image_to_workspace_registry``) makes sure the image is in the workspace's
        image registry. Returns the completed build."""
        from kiln.sdk.environment_build import EnvironmentBuild, check_platform, one_flag

        check_platform(platform)
        docker = one_flag("useDocker", useDocker, "use_docker", use_docker)
        push = one_flag(
            "pushImageToWorkspaceAcr",
            pushImageToWorkspaceAcr,
            "push_image_to_workspace_registry",
            push_image_to_workspace_registry,
        )
        registered = self._registered_in(workspace)
        build = EnvironmentBuild(
            workspace, registered.name, str(registered.version), image=docker, push=push
        )
        return build.wait_for_completion(show_output=show_output)

    def get_image_details(self, workspace: Workspace) -> dict[str, Any]:
        """The image of this registered version on this machine, in Azure ML's shape
        (``dockerImage``, ``imageExistsInRegistry``, ``ingredients``, ``pythonEnvironment``)
        plus ``kiln image show``'s fields. NotFound when it has no image here yet."""
        from kiln import catalog
        from kiln.sdk.environment_build import azure_image_details

        record = catalog.get(workspace, self.name, self.version)
        return azure_image_details(workspace, record)

    def _registered_in(self, workspace: Workspace) -> Environment:
        if self._workspace is workspace and self.version:
            return self
        return self.register(workspace)

    @staticmethod
    def get(workspace: Workspace, name: str, version: str | None = None) -> Environment:
        from kiln import catalog

        return Environment._from_record(catalog.get(workspace, name, version), workspace)

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """The latest version of each environment, curated ones included, by name."""
        from kiln import catalog

        records = catalog.list_records(workspace)
        return {r.name: Environment._from_record(r, workspace) for r in records}

    @staticmethod
    def _bare(name: str) -> Environment:
        """An environment with nothing set, not even azureml-core's defaults."""
        return Environment(name, _definition=validate_definition({"name": name}))

    @staticmethod
    def _from_record(record: EnvironmentRecord, workspace: Workspace) -> Environment:
        env = Environment(record.name, _definition=record.definition.model_copy(deep=True))
        env._workspace = workspace
        env._registered_version = record.version
        return env

    # Files
    def save_to_directory(
        self,
        path: str | os.PathLike[str],
        overwrite: bool | str = False,
        format: str | bool = "azure-v1",  # shadows a builtin, to read like the other faces
    ) -> builtins.list[Path]:
        """Write the definition (and the local files it names) into folder ``path``: by
        default what azureml-core's ``save_to_directory(path, overwrite)`` writes
        (``azureml_environment.json``, ``conda_dependencies.yml``, ``BaseDockerfile``);
        ``format`` chooses another (kiln, azure-v2, conda, requirements). A format name in
        ``overwrite``'s place is Kiln's earlier order, ``(path, format, overwrite)``."""
        from kiln.errors import AlreadyExists, Conflict
        from kiln.formats.dispatch import export

        if isinstance(overwrite, str):  # (path, format[, overwrite])
            format, overwrite = overwrite, format if isinstance(format, bool) else False
        if not isinstance(format, str):
            raise InvalidRequest(
                f"`format`: {format!r} is not a format; pass format='azure-v1' (the default), "
                "'kiln', 'azure-v2', 'conda' or 'requirements'"
            )

        if self._definition.r is not None and format != "kiln":
            warnings.warn(
                f"the R section (`r`) of {self.name!r} is kept only by format='kiln'; "
                f"format={format!r} leaves it out",
                UserWarning,
                stacklevel=2,
            )
        lookup = None
        if self._workspace is not None:
            from kiln.buildinputs import content_lookup

            lookup = content_lookup(self._workspace, self.definition)
        default_image = None
        if self._workspace is not None:
            from kiln.images import default_base_image

            default_image = default_base_image(self._workspace)
        try:
            written, notes = export(
                self.definition,
                Path(path),
                format,
                default_image=default_image,
                source_dir=self._source_dir,
                lookup=lookup,
                overwrite=overwrite,
            )
        except Conflict as exc:  # a file is there: a FileExistsError too, as in azureml-core
            raise AlreadyExists(exc.message, hint=exc.hint) from None
        for note in notes:  # the same warnings `kiln env download` prints
            warnings.warn(note, UserWarning, stacklevel=2)
        return written

    @staticmethod
    def load_from_directory(path: str | os.PathLike[str]) -> Environment:
        from kiln.errors import MissingFile
        from kiln.formats.dispatch import load_path

        if not Path(path).exists():  # a FileNotFoundError too, as in azureml-core
            raise MissingFile(f"{os.fspath(path)} does not exist; pass the folder it was saved to")
        loaded = load_path(Path(path))
        source = Path(path) if Path(path).is_dir() else Path(path).parent
        return Environment(
            loaded.definition.name, _definition=loaded.definition, _source_dir=source
        )

    # Constructors with Azure ML's names
    @staticmethod
    def from_pip_requirements(
        name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
    ) -> Environment:
        """The file's packages and options on azureml-core's defaults, with ``pip`` (or
        ``pip=pip_version``) among the conda packages, as azureml-core writes it."""
        from kiln.formats import requirements

        definition = requirements.load(Path(file_path), name=name).definition
        env = Environment(name, _source_dir=Path(file_path).parent)
        assign(env._definition.python, "pip", definition.python.pip, where="python")
        pip = f"pip={pip_version}" if pip_version else "pip"
        env.python.conda_dependencies.add_conda_package(pip)
        return env

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        from kiln.formats import conda_env

        definition = conda_env.load(Path(file_path)).definition
        assign(definition, "name", name)
        if definition.python.version is None:
            from kiln.sdk.defaults import PYTHON_DEFAULT_VERSION

            # As azureml-core: a conda file without a python pin gets the default, said aloud.
            warnings.warn(
                f"No Python version provided in {file_path}, defaulting to "
                f"{PYTHON_DEFAULT_VERSION!r}; pin it with python=X.Y to choose",
                UserWarning,
                stacklevel=2,
            )
            assign(definition.python, "version", PYTHON_DEFAULT_VERSION, where="python")
        return Environment(name, _definition=definition, _source_dir=Path(file_path).parent)

    @staticmethod
    def from_existing_environment(
        name: str, prefix_or_interpreter: str | os.PathLike[str]
    ) -> Environment:
        """Freeze what is installed in an existing virtualenv or conda prefix."""
        from kiln.sdk.freeze import freeze

        frozen = freeze(Path(prefix_or_interpreter))
        return Environment._frozen(name, frozen, channels=[])

    @staticmethod
    def from_existing_conda_environment(
        name: str, conda_environment_name: str | os.PathLike[str]
    ) -> Environment:
        """What a conda environment holds (named as ``conda env list`` names it, or by its
        prefix): its channels, conda packages as ``name=version`` (as azureml-core's
        ``conda env export --no-builds``), pip packages not installed by conda, its Python."""
        from kiln.sdk.freeze import conda_channels, find_conda_prefix, freeze

        prefix = find_conda_prefix(str(conda_environment_name))
        frozen = freeze(prefix, builds=False)
        return Environment._frozen(name, frozen, channels=conda_channels(prefix))

    @staticmethod
    def _frozen(name: str, frozen: Frozen, *, channels: builtins.list[str]) -> Environment:
        if frozen.skipped:
            warnings.warn(
                f"left out of {name!r}: {', '.join(frozen.skipped)}; build a wheel and add its "
                "path with env.python.conda_dependencies.add_pip_package(...)",
                UserWarning,
                stacklevel=3,  # the caller of from_existing_*
            )
        env = Environment(name)
        python = {
            "version": frozen.python_version,
            "conda": {"channels": channels, "packages": frozen.conda_packages},
            "pip": {"packages": frozen.pip_packages},
        }
        env._set("python", python)
        return env

    @staticmethod
    def add_private_pip_wheel(
        workspace: Workspace, file_path: str | os.PathLike[str], exist_ok: bool = False
    ) -> str:
        """Store a wheel in the workspace (``kiln wheel add``) and return the entry to list
        with ``add_pip_package``: ``wheel:FILENAME``. As in azureml-core, a wheel of that name
        stored already is an error unless ``exist_ok``; a different one is always refused."""
        from kiln.errors import Conflict
        from kiln.wheelstore import add_wheel

        result = add_wheel(workspace, Path(file_path))
        filename = result.wheel.filename
        if not result.added and not exist_ok:
            raise Conflict(
                f"a wheel named {filename} is stored already; pass exist_ok=True to use it"
            )
        return f"wheel:{filename}"

    @staticmethod
    def from_docker_image(
        name: str,
        image: str,
        conda_file: str | os.PathLike[str] | None = None,
        *,
        conda_specification: str | os.PathLike[str] | None = None,
        pip_requirements: str | os.PathLike[str] | None = None,
    ) -> Environment:
        """``image`` with the Python packages of a conda file (``conda_file`` or azureml-core's
        ``conda_specification``) or of a requirements file, at most one of them."""
        env = Environment._from_dependencies(
            name, conda_specification or conda_file, pip_requirements
        )
        env._set("docker", {"base_image": image})
        return env

    @staticmethod
    def from_dockerfile(
        name: str,
        dockerfile: str | os.PathLike[str],
        conda_specification: str | os.PathLike[str] | None = None,
        pip_requirements: str | os.PathLike[str] | None = None,
    ) -> Environment:
        """``dockerfile`` is a path to a Dockerfile or the Dockerfile text itself."""
        text = _dockerfile_text(dockerfile)
        env = Environment._from_dependencies(name, conda_specification, pip_requirements)
        env._set("docker", {"dockerfile": text})
        return env

    @staticmethod
    def _from_dependencies(
        name: str,
        conda_specification: str | os.PathLike[str] | None,
        pip_requirements: str | os.PathLike[str] | None,
    ) -> Environment:
        if conda_specification and pip_requirements:
            raise InvalidRequest(
                "pass conda_specification or pip_requirements, not both: one file says what "
                "Python packages the image gets"
            )
        if conda_specification:
            return Environment.from_conda_specification(name, conda_specification)
        if pip_requirements:
            return Environment.from_pip_requirements(name, pip_requirements)
        # Neither: the image's own Python is used, so no default version to contradict it.
        return Environment._bare(name)

    def clone(self, new_name: str) -> Environment:
        """An editable copy under a new name, with no version (curated origins included)."""
        definition = self.definition.model_copy(deep=True, update={"version": None})
        assign(definition, "name", new_name)
        definition.tags = {k: v for k, v in definition.tags.items() if k != "curated"}
        env = Environment(new_name, _definition=definition, _source_dir=self._source_dir)
        env._workspace = self._workspace
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


def _dockerfile_text(dockerfile: str | os.PathLike[str]) -> str:
    """The Dockerfile's text: ``dockerfile`` is the text itself or the path of a file."""
    from kiln.environment.files import read_text_limited

    text = str(dockerfile)
    if isinstance(dockerfile, str) and "\n" in text:
        return text
    try:
        is_file = Path(dockerfile).is_file()
    except OSError:  # e.g. a name too long for a path: it is text
        is_file = False
    if is_file:
        return read_text_limited(Path(dockerfile), field="docker.dockerfile")
    words = text.split(maxsplit=1)
    if isinstance(dockerfile, str) and words and words[0].upper() in _DOCKERFILE_INSTRUCTIONS:
        return text
    raise InvalidDefinition(
        f"`docker.dockerfile`: {text!r} is neither a file nor Dockerfile text (which starts "
        "with FROM); pass the path of an existing Dockerfile or its text"
    )
