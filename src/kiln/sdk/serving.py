"""Azure ML's names for models and deployments: ``Model``, ``InferenceConfig``,
``LocalWebservice.deploy_configuration``, ``Webservice``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.errors import InvalidRequest, KilnError, NotFound
from kiln.serving import deployments, specs
from kiln.serving import models as model_store
from kiln.serving.specs import DEFAULT_ENVIRONMENT, DEFAULT_MAX_BODY, SpecRequest
from kiln.workspace import Workspace


class Model:
    """A registered model version."""

    def __init__(self, workspace: Workspace, name: str, version: int | None = None) -> None:
        self.workspace = workspace
        self._record = model_store.get(workspace, name, version)
        self.name, self.version = self._record.name, self._record.version
        self.id = self._record.reference
        self.tags, self.description = self._record.tags, self._record.description
        self.run_id = self._record.run_id

    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Model:
        record = model_store.register(
            workspace, Path(model_path), model_name, tags=tags, description=description
        )
        return Model(workspace, record.name, record.version)

    @staticmethod
    def get(workspace: Workspace, name: str, version: int | None = None) -> Model:
        return Model(workspace, name, version)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None) -> list[Model]:
        return [
            Model(workspace, r.name, r.version) for r in model_store.list_models(workspace, name)
        ]

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
        target = Path(target_dir) / self._record.file_name
        if target.exists() and not exist_ok:
            raise InvalidRequest(f"{target} exists; pass exist_ok=True to overwrite it")
        return str(model_store.download(self.workspace, self._record, Path(target_dir)))

    def serialize(self) -> dict[str, Any]:
        return self._record.summary()

    @staticmethod
    def deploy(
        workspace: Workspace,
        name: str,
        models: Sequence[Model],
        inference_config: InferenceConfig,
        deployment_config: DeploymentConfig | None = None,
        overwrite: bool = False,
    ) -> Webservice:
        config = deployment_config or LocalWebservice.deploy_configuration()
        request = SpecRequest(
            models=[m.id for m in models], **_code(inference_config), **_settings(config)
        )
        # Bad settings must not cost the deployment this one replaces.
        specs.check_settings(request)
        specs.check_address(config.host, config.port, try_listening=False)
        if overwrite:
            with contextlib.suppress(NotFound):
                deployments.delete(workspace, name)
        specs.check_address(config.host, config.port)  # once the one it replaces let go
        spec = specs.new_spec(workspace, request)
        deployments.create(
            workspace, name, spec, host=config.host, port=config.port, container=config.container
        )
        return Webservice(workspace, name)

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version})"


@dataclass
class InferenceConfig:
    entry_script: str
    source_directory: str | os.PathLike[str] = "."
    environment: Any = None  # an Environment, a definition, or "NAME[:VERSION]"


@dataclass
class DeploymentConfig:
    port: int | None = None  # a free one when None
    host: str = "127.0.0.1"
    workers: int = 1
    environment_variables: dict[str, str] = field(default_factory=dict)
    max_request_body_bytes: int = DEFAULT_MAX_BODY
    show_errors: bool = False  # 500 bodies carry run()'s exception message (azmlinfsrv's do not)
    allow_many_workers: bool = False  # more workers than 4 per CPU of this machine
    container: bool = False  # the workers run in containers of the environment's image


class LocalWebservice:
    @staticmethod
    def deploy_configuration(port: int | None = None, **options: Any) -> DeploymentConfig:
        return DeploymentConfig(port=port, **options)


def _settings(config: DeploymentConfig) -> dict[str, Any]:
    return {
        "workers": config.workers,
        "environment_variables": dict(config.environment_variables),
        "max_body_bytes": config.max_request_body_bytes,
        "show_errors": config.show_errors,
        "allow_many_workers": config.allow_many_workers,
    }


def _code(inference_config: InferenceConfig) -> dict[str, Any]:
    return {
        "entry_script": inference_config.entry_script,
        "source_directory": inference_config.source_directory,
        "environment": inference_config.environment or DEFAULT_ENVIRONMENT,
    }


class Webservice:
    """A deployment, as Azure ML's SDK shows one."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

    @property
    def state(self) -> str:
        return deployments.get(self.workspace, self.name).state

    @property
    def scoring_uri(self) -> str | None:
        return deployments.get(self.workspace, self.name).scoring_uri

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = 900) -> None:
        record = deployments.wait(
            self.workspace,
            self.name,
            echo=sys.stdout.buffer if show_output else None,
            timeout=timeout_sec,
        )
        if record.state != deployments.HEALTHY or record.applied_generation != record.generation:
            raise KilnError(
                f"deployment {self.name} is {record.state}: {record.error or 'see get_logs()'}"
            )

    def run(self, input_data: Any, timeout: float = 60) -> Any:
        """POST ``input_data`` (text as is, anything else as JSON) and return the decoded answer."""
        uri = self.scoring_uri
        if uri is None:
            raise KilnError(f"deployment {self.name} has no scoring URI yet; wait_for_deployment()")
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(
            uri, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise KilnError(f"the service answered {exc.code}: {detail}") from None

    def get_logs(self) -> str:
        return deployments.logs(self.workspace, self.name)

    def update(
        self,
        models: list[Model] | None = None,
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
    ) -> None:
        """Serve new models or code with no downtime: returns once the update is live (or
        raises with the reason, the previous version still serving)."""
        record = deployments.get(self.workspace, self.name)
        request = SpecRequest(
            models=[m.id for m in models or ()],
            **(_code(inference_config) if inference_config else {}),
            **(_settings(deployment_config) if deployment_config else {}),
        )
        spec = specs.updated_spec(self.workspace, record.spec, request)
        deployments.update(self.workspace, self.name, spec)
        record = deployments.wait(self.workspace, self.name)
        if record.error or record.applied_generation != record.generation:
            raise KilnError(record.error or f"deployment {self.name} is {record.state}")

    def delete(self) -> None:
        deployments.delete(self.workspace, self.name)

    def __repr__(self) -> str:
        return f"Webservice({self.name!r})"
