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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiln.errors import InvalidRequest, KilnError, NotFound
from kiln.serving import deployments
from kiln.serving import models as model_store
from kiln.workspace import Workspace

DEFAULT_ENVIRONMENT = "Kiln-inference-py311"  # when an InferenceConfig names none


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
        if overwrite:
            with contextlib.suppress(NotFound):
                deployments.delete(workspace, name)
        spec = _spec(workspace, models, inference_config, config)
        deployments.create(workspace, name, spec, host=config.host, port=config.port)
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
    max_request_body_bytes: int = deployments.DEFAULT_MAX_BODY
    show_errors: bool = False  # 500 bodies carry run()'s exception message (azmlinfsrv's do not)


class LocalWebservice:
    @staticmethod
    def deploy_configuration(port: int | None = None, **options: Any) -> DeploymentConfig:
        return DeploymentConfig(port=port, **options)


def _spec(
    workspace: Workspace,
    models: Sequence[Model],
    inference_config: InferenceConfig,
    config: DeploymentConfig,
) -> deployments.DeploymentSpec:
    from kiln.runs import snapshot
    from kiln.runs.submission import resolve_environment

    if not models:
        raise InvalidRequest("`models`: deploy at least one registered model")
    source = Path(inference_config.source_directory).expanduser().absolute()
    entry = snapshot.script_path(source, inference_config.entry_script)
    env = resolve_environment(
        workspace, inference_config.environment or DEFAULT_ENVIRONMENT, source
    )
    return deployments.DeploymentSpec(
        models=[m.id for m in models],
        entry_script=entry,
        source_snapshot=snapshot.take(workspace, source, entry),
        env_name=env.name,
        env_version=env.version,
        workers=config.workers,
        environment_variables=dict(config.environment_variables),
        max_body_bytes=config.max_request_body_bytes,
        show_errors=config.show_errors,
    )


def updated_spec(
    workspace: Workspace,
    base: deployments.DeploymentSpec,
    *,
    models: Sequence[Model] | None = None,
    inference_config: InferenceConfig | None = None,
    deployment_config: DeploymentConfig | None = None,
) -> deployments.DeploymentSpec:
    """``base`` with what an update names replaced; host and port stay (the socket is kept)."""
    spec = base
    if inference_config is not None:
        current = [Model(workspace, *model_store.parse_model_reference(m)) for m in base.models]
        spec = _spec(workspace, models or current, inference_config, DeploymentConfig())
    elif models is not None:
        spec = replace(spec, models=[m.id for m in models])
    config = deployment_config
    if config is None:
        return replace(
            spec,
            workers=base.workers,
            environment_variables=base.environment_variables,
            max_body_bytes=base.max_body_bytes,
            show_errors=base.show_errors,
        )
    return replace(
        spec,
        workers=config.workers,
        environment_variables=dict(config.environment_variables),
        max_body_bytes=config.max_request_body_bytes,
        show_errors=config.show_errors,
    )


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
        spec = updated_spec(
            self.workspace,
            record.spec,
            models=models,
            inference_config=inference_config,
            deployment_config=deployment_config,
        )
        deployments.update(self.workspace, self.name, spec)
        record = deployments.wait(self.workspace, self.name)
        if record.error or record.applied_generation != record.generation:
            raise KilnError(record.error or f"deployment {self.name} is {record.state}")

    def delete(self) -> None:
        deployments.delete(self.workspace, self.name)

    def __repr__(self) -> str:
        return f"Webservice({self.name!r})"
