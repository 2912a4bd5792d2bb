"""``EnvironmentBuild``: what ``Environment.build(ws)`` and ``build_local`` return, as in Azure
ML's SDK. A definition that names a base image (or a Dockerfile) is built into its OCI image
through ``kiln.images``; any other is built on this machine, unless an image is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.buildlog import Reporter
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace

REGISTRY_FIX = (
    "this workspace has no image registry to push to: set one with "
    "`kiln init --image-registry URL` or KILN_IMAGE_REGISTRY"
)


class EnvironmentBuild:
    """A build of one registered version. ``wait_for_completion`` builds it, or reuses the
    cached build at once; afterwards ``interpreter``, ``path`` and ``log`` describe it, and
    ``image_details`` the image (reference, digest, action, registry, base) when it is one."""

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        version: str,
        *,
        image: bool | None = None,
        push: bool = False,
    ) -> None:
        """``image``: None builds as the definition says (an image when it names a base image
        or a Dockerfile), True builds an image (on the workspace's default base if it names
        none), False only the Python part on this machine. ``push`` makes sure the image is
        in the workspace's registry."""
        self.workspace, self.name, self.version = workspace, name, version
        self.status = "NotStarted"
        self.interpreter: Path | None = None
        self.path: Path | None = None
        self.image_details: dict[str, Any] | None = None
        self._image, self._push = image, push
        self._build_hash: str | None = None

    def wait_for_completion(self, show_output: bool = False) -> EnvironmentBuild:
        from kiln import catalog
        from kiln.buildlog import SilentReporter
        from kiln.errors import UsageError
        from kiln.progress import Progress

        record = catalog.get(self.workspace, self.name, self.version)
        as_image = self._image if self._image is not None else _names_an_image(record)
        if self._push and not self.workspace.image_registry:
            raise UsageError(REGISTRY_FIX)
        if self._push and not as_image:
            raise UsageError(
                f"{record.reference} is built on this machine, not as an image: nothing to push; "
                "build it with use_docker=True to push its image"
            )
        reporter = Progress(f"building {record.reference}") if show_output else SilentReporter()
        self.status = "Running"
        try:
            message = (
                self._build_image(record, reporter)
                if as_image
                else self._build_host(record, reporter, host_only=self._image is False)
            )
        except Exception:
            self.status = "Failed"
            raise
        finally:
            if isinstance(reporter, Progress):
                reporter.done()
        self.status = "Succeeded"
        if show_output:
            print(message)
        return self

    def _build_host(self, record: EnvironmentRecord, reporter: Reporter, *, host_only: bool) -> str:
        from kiln.builds import ensure_built

        built = ensure_built(self.workspace, record, reporter=reporter, host_only=host_only)
        self.interpreter, self.path = built.interpreter, built.path
        self._build_hash = built.record.build_hash
        verb = "Built" if built.built_now else "Reused the cached build of"
        return f"{verb} {record.reference}: {built.interpreter}"

    def _build_image(self, record: EnvironmentRecord, reporter: Reporter) -> str:
        from kiln import images

        result = images.build(self.workspace, record, reporter=reporter)
        summary = result.summary()
        if self._push and not summary.get("remote"):  # built before the registry was set
            summary = images.push(self.workspace, record)
        self.image_details = summary
        self.interpreter, self.path = result.built.interpreter, result.built.path
        self._build_hash = result.built.record.build_hash
        verbs = {"built": "Built", "pulled": "Pulled", "pushed": "Pushed"}
        verb = verbs.get(summary["action"], "Reused the image")
        where = f", in {summary['remote']}" if summary.get("remote") else ""
        return f"{verb} {summary['image']} ({record.reference}): {summary['digest']}{where}"

    @property
    def log(self) -> str:
        """The full log of the latest build of this version."""
        from kiln.buildinfo import latest_build_log

        build_hash = self._build_hash
        if build_hash is None:
            from kiln import catalog

            build_hash = catalog.get(self.workspace, self.name, self.version).build_hash
        stored = latest_build_log(self.workspace, build_hash=build_hash)
        return stored.read_text(encoding="utf-8") if stored else ""


def _names_an_image(record: EnvironmentRecord) -> bool:
    docker = record.definition.docker
    return bool(docker.base_image or docker.dockerfile or docker.build_context)


def check_platform(platform: str | None) -> None:
    if platform is not None and not platform.lower().startswith("linux"):
        from kiln.errors import UsageError

        raise UsageError(
            f"platform {platform!r}: Kiln builds Linux environments and images on this "
            "machine only; pass platform=None or 'Linux'"
        )


def one_flag(name: str, value: bool | None, alias: str, alias_value: bool | None) -> bool:
    """azureml-core's keyword or Kiln's snake_case alias; both given must agree."""
    if value is not None and alias_value is not None and value != alias_value:
        from kiln.errors import UsageError

        raise UsageError(f"{name}={value} and {alias}={alias_value} disagree; pass one of them")
    return bool(value if value is not None else alias_value)


def azure_image_details(workspace: Workspace, record: EnvironmentRecord) -> dict[str, Any]:
    """``kiln image show``'s document under azureml-core's ``get_image_details`` keys:
    ``dockerImage.name`` is the repository and tag inside ``dockerImage.registry.address``
    (the engine store's reference when there is no registry); passwords are never given."""
    from kiln import images
    from kiln.builders.oci.registry import parse

    detail = images.details(workspace, record)
    registry = parse(detail["registry"]) if detail.get("registry") else None
    remote = detail.get("remote")
    name = remote.removeprefix(f"{registry.host}/") if registry and remote else detail["image"]
    return {
        "dockerImage": {
            "name": name,
            "registry": {
                "address": registry.host if registry else None,
                "username": registry.username if registry else None,
                "password": None,
            },
        },
        "imageExistsInRegistry": bool(detail["exists_in_registry"]),
        "ingredients": {"dockerfile": detail["dockerfile"]},
        "pythonEnvironment": {"interpreterPath": detail["interpreter"]},
        **detail,
    }
