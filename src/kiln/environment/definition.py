"""The environment definition model, validated on construction and on assignment.

The shape of these models is the shape of Kiln YAML, and ``schema/kiln-environment.schema.json``
is generated from them. Every field that may hold a file's content holds the content (or its
sha256), never only a path, so that digests depend on what is built and not where it lives.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kiln.environment import gitcontext
from kiln.environment.packages import (
    parse_conda_entry,
    parse_pip_entry,
    url_has_literal_credentials,
)
from kiln.environment.urls import plain_http_problem
from kiln.secrets import is_reference, plain_password_message, plain_secret_variable

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# Validation context of a definition read back from the registry: one stored before a rule on
# secrets existed stays readable (and is shown redacted); new input is always checked.
STORED = "stored"


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(STORED))


Name = Annotated[str, Field(min_length=1, max_length=255, pattern=NAME_PATTERN)]
Version = Annotated[str, Field(min_length=1, max_length=64, pattern=VERSION_PATTERN)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]


class _Model(BaseModel):
    # No blanket whitespace stripping: an env var's value "> " must stay "> ". Package lines
    # are normalized by their own validators; names and versions have patterns.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text, SQLite can: refuse it so both behave the same.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character; remove it")
        if isinstance(value, dict) and any(
            "\x00" in f"{k}{v}" for k, v in value.items() if isinstance(v, str)
        ):
            raise ValueError("contains a NUL character; remove it")
        return value


class PipSection(_Model):
    """Packages installed with pip/uv, in order, plus the options pip needs to find them."""

    packages: list[str] = Field(default_factory=list, description="Requirement lines, in order.")
    constraints: list[str] = Field(
        default_factory=list, description="Constraint lines (from -c files), in order."
    )
    index_url: str | None = Field(default=None, description="Replaces the default package index.")
    extra_index_urls: list[str] = Field(default_factory=list)
    find_links: list[str] = Field(default_factory=list)
    pre: bool = Field(default=False, description="Allow pre-releases (pip --pre).")
    file_digests: dict[str, Sha256] = Field(
        default_factory=dict,
        description="sha256 of each local file named in packages (filled in by Kiln).",
    )

    @field_validator("packages", "constraints")
    @classmethod
    def _valid_requirements(cls, entries: list[str]) -> list[str]:
        cleaned = [" ".join(e.split()) for e in entries]
        for index, entry in enumerate(cleaned):
            try:
                parse_pip_entry(entry)
            except ValueError as exc:
                raise ValueError(f"entry {index}: {exc}") from None
        return cleaned

    @field_validator("index_url", "extra_index_urls", "find_links")
    @classmethod
    def _no_plain_passwords(cls, value: str | list[str] | None) -> str | list[str] | None:
        for url in [value] if isinstance(value, str) else value or []:
            url = url.strip()
            if url_has_literal_credentials(url):
                raise ValueError(
                    "a URL carries a plain-text password or token; write https://USER:${ENV_VAR}@HOST/... "
                    "so the secret is read from the environment"
                )
        return value

    @field_validator("index_url", "extra_index_urls", "find_links")
    @classmethod
    def _no_plain_http(
        cls, value: str | list[str] | None, info: ValidationInfo
    ) -> str | list[str] | None:
        for url in [] if _stored(info) else [value] if isinstance(value, str) else value or []:
            problem = plain_http_problem(url)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("find_links")
    @classmethod
    def _remote_find_links(cls, urls: list[str]) -> list[str]:
        # A local folder's wheels would not enter the build hash: builds would go stale silently.
        for url in urls:
            if "://" not in url or url.lower().startswith("file:"):
                raise ValueError(
                    f"{url!r} is a local folder; its content would not enter the build hash: "
                    "list each wheel by path in packages instead"
                )
        return urls


class CondaSection(_Model):
    channels: list[str] = Field(default_factory=list, description="Channels, in priority order.")
    packages: list[str] = Field(default_factory=list, description="Conda match specs, in order.")

    @field_validator("packages")
    @classmethod
    def _valid_specs(cls, entries: list[str]) -> list[str]:
        cleaned = [" ".join(e.split()) for e in entries]
        for index, entry in enumerate(cleaned):
            try:
                parse_conda_entry(entry)
            except ValueError as exc:
                raise ValueError(f"entry {index}: {exc}") from None
        return cleaned

    @field_validator("channels")
    @classmethod
    def _valid_channels(cls, channels: list[str], info: ValidationInfo) -> list[str]:
        for channel in channels:
            if not channel or any(c.isspace() for c in channel):
                raise ValueError(f"channel {channel!r} must be a name or URL without spaces")
            # As index URLs: only a ${VAR} reference is stored.
            if url_has_literal_credentials(channel) and not _stored(info):
                raise ValueError(plain_password_message(channel))
            problem = None if _stored(info) else plain_http_problem(channel)
            if problem:
                raise ValueError(problem)
        return channels


class PythonSection(_Model):
    version: str | None = Field(
        default=None, pattern=r"^3(\.[0-9]+){0,2}$", description="e.g. '3.11' or '3.11.7'."
    )
    conda: CondaSection = Field(default_factory=CondaSection)
    pip: PipSection = Field(default_factory=PipSection)
    user_managed: bool = Field(
        default=False, description="Kiln installs nothing; the interpreter already has it all."
    )
    interpreter_path: str | None = None
    check_imports: list[str] = Field(
        default_factory=list,
        description=(
            "Modules a build imports to prove the environment works (opt-in): a build fails only "
            "on a module named here."
        ),
    )

    @field_validator("check_imports")
    @classmethod
    def _module_names(cls, modules: list[str]) -> list[str]:
        for index, module in enumerate(modules):
            if not all(part.isidentifier() for part in module.split(".")):
                raise ValueError(
                    f"entry {index}: {module!r} is not a module name; write it as in an import "
                    "statement, e.g. 'pyarrow' or 'google.protobuf'"
                )
        return modules


def has_conda_file_content(python: PythonSection) -> bool:
    """True when a conda file has something to say: a version, channels, packages or pip
    options (which it writes as pip lines)."""
    pip = python.pip
    options = pip.index_url or pip.extra_index_urls or pip.find_links or pip.pre
    conda = python.version or python.conda.packages or python.conda.channels
    return bool(conda or pip.packages or options)


def _reference_only(value: str | None, secret: str, example: str) -> str | None:
    if value is not None and not is_reference(value):
        raise ValueError(
            f"a plain-text {secret} is never stored; set it in an environment variable and "
            f"write {example}"
        )
    return value


class RegistryRef(_Model):
    """Where a private base image comes from. The password is only ever a ``${VAR}`` reference."""

    address: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, description="An environment reference: ${VAR}.")

    @field_validator("password")
    @classmethod
    def _password_is_reference(cls, value: str | None) -> str | None:
        return _reference_only(value, "password", "password: ${MY_REGISTRY_PASSWORD}")


class Platform(_Model):
    os: Literal["linux", "windows"] = "linux"
    architecture: str = "amd64"

    @field_validator("os", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class DockerSection(_Model):
    """The container side: one of a base image, Dockerfile text or a build context (a folder,
    or a git URL in Docker's syntax ``URL[#REF][:SUBFOLDER]``)."""

    base_image: str | None = None
    base_image_registry: RegistryRef | None = None
    dockerfile: str | None = Field(default=None, description="Dockerfile text.")
    build_context: str | None = Field(
        default=None,
        description=(
            "A folder with a Dockerfile, or a git URL: URL[#REF][:SUBFOLDER] (REF defaults to "
            "the remote's HEAD)."
        ),
    )
    dockerfile_path: str | None = Field(
        default=None, description="The Dockerfile inside build_context (default 'Dockerfile')."
    )
    build_context_digest: Sha256 | None = Field(
        default=None, description="sha256 of the build context's files (filled in by Kiln)."
    )
    build_context_commit: str | None = Field(
        default=None,
        pattern=gitcontext.COMMIT_PATTERN,
        description=(
            "The commit a git build context's ref named when it was registered (filled in by "
            "Kiln; keep it to pin that commit, remove it to follow the ref)."
        ),
    )
    platform: Platform | None = None
    # How Azure ML v1 starts a run's container (azureml-core's DockerSection): settings of the
    # run, not of the image, so they are in the definition digest and never in the build hash.
    enabled: bool = Field(default=False, description="Run inside a container (Azure ML v1).")
    shm_size: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)? ?[kKmMgGtTpP]?[iI]?[bB]?$",
        description="The container's shared memory, e.g. '8g' (Azure ML v1; default 2g).",
    )
    arguments: list[str] = Field(
        default_factory=list, description="Extra `docker run` arguments (Azure ML v1)."
    )

    @field_validator("dockerfile", "base_image", "build_context", "dockerfile_path")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        # Surrounding blank lines and spaces carry no meaning in these (the digest ignores them too).
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> DockerSection:
        chosen = [f for f in ("base_image", "dockerfile", "build_context") if getattr(self, f)]
        if len(chosen) > 1:
            raise ValueError(
                f"`docker.{chosen[0]}` and `docker.{chosen[1]}` are both set; an image comes from "
                "one of base_image, dockerfile or build_context: remove all but one"
            )
        if self.dockerfile_path and not self.build_context:
            raise ValueError("`docker.dockerfile_path` needs `docker.build_context`")
        git = self.git_context
        if self.build_context_commit and not git:
            raise ValueError(
                "`docker.build_context_commit` needs a git URL in `docker.build_context`"
            )
        path = self.dockerfile_path or ""
        if git and (path.startswith("/") or ".." in path.split("/")):
            raise ValueError(
                f"`docker.dockerfile_path` {path!r} must be a path inside the git build context, "
                "e.g. Dockerfile.gpu"
            )
        return self

    @field_validator("build_context")
    @classmethod
    def _valid_git_url(cls, value: str | None) -> str | None:
        if value and gitcontext.is_git_url(value):
            gitcontext.parse(value)  # raises with the field's fix; the value is never quoted
        return value

    @property
    def git_context(self) -> gitcontext.GitContext | None:
        """The build context when it is a git URL."""
        context = self.build_context
        return gitcontext.parse(context) if context and gitcontext.is_git_url(context) else None

    @property
    def context_folder(self) -> str | None:
        """The build context when it is a local folder (stored in the artifact store)."""
        context = self.build_context
        return context if context and not gitcontext.is_git_url(context) else None


class SparkPackage(_Model):
    group: str = Field(min_length=1)
    artifact: str = Field(min_length=1)
    version: str = Field(min_length=1)


class SparkSection(_Model):
    repositories: list[str] = Field(default_factory=list)
    packages: list[SparkPackage] = Field(default_factory=list)
    precache_packages: bool = True


class RCranPackage(_Model):
    name: str = Field(min_length=1)
    version: str | None = None
    repository: str | None = None


class RGitHubPackage(_Model):
    repository: str = Field(min_length=1, description="USER/REPO[/SUBDIR][@REF|#PULL]")
    auth_token: str | None = Field(default=None, description="An environment reference: ${VAR}.")

    @field_validator("auth_token")
    @classmethod
    def _token_is_reference(cls, value: str | None) -> str | None:
        return _reference_only(value, "token", "auth_token: ${MY_GITHUB_TOKEN}")


class RSection(_Model):
    """Azure ML's R section, kept as written: Kiln stores and exports it but builds no R."""

    r_version: str | None = None
    user_managed: bool = False
    rscript_path: str | None = None
    snapshot_date: str | None = None
    cran_packages: list[RCranPackage] = Field(default_factory=list)
    github_packages: list[RGitHubPackage] = Field(default_factory=list)
    custom_url_packages: list[str] = Field(default_factory=list)
    bioconductor_packages: list[str] = Field(default_factory=list)


class Route(_Model):
    path: str = Field(pattern=r"^/")
    port: int = Field(ge=1, le=65535)


class InferenceConfig(_Model):
    """Routes of a custom inference image (Azure ML v2 ``inference_config``)."""

    liveness_route: Route | None = None
    readiness_route: Route | None = None
    scoring_route: Route | None = None


class EnvironmentDefinition(_Model):
    """Everything Kiln knows about one environment."""

    name: Name
    version: Version | None = None
    description: str | None = None
    tags: dict[Annotated[str, Field(min_length=1, max_length=255)], str] = Field(
        default_factory=dict
    )
    python: PythonSection = Field(default_factory=PythonSection)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    docker: DockerSection = Field(default_factory=DockerSection)
    spark: SparkSection = Field(default_factory=SparkSection)
    r: RSection | None = Field(default=None, description="Azure ML's R section; not built.")
    inferencing_stack_version: str | None = None
    inference_config: InferenceConfig | None = None
    asset_id: str | None = Field(
        default=None,
        description=(
            "Azure ML's assetId of the registered environment this came from: kept for round "
            "trips, in no digest (like description and tags)."
        ),
    )

    @field_validator("version")
    @classmethod
    def _not_latest(cls, value: str | None) -> str | None:
        if value is not None and value.lower() == "latest":
            raise ValueError("'latest' is not a version; leave version out to get the next one")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _valid_variables(cls, variables: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key, value in variables.items():
            if not ENV_VAR_PATTERN.fullmatch(key):
                raise ValueError(
                    f"variable name {key!r} is invalid; use letters, digits and '_', not first a digit"
                )
            refusal = plain_secret_variable(key, value)
            if refusal is not None and not _stored(info):
                raise ValueError(refusal)
        return variables

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}" if self.version else self.name
