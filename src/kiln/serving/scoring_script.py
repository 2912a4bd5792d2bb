"""Loading a user's ``score.py``: import it, check ``init``/``run``, and tell how azmlinfsrv
would call ``run``: with the body as text (undecorated), with the body's JSON values by
parameter name (``@input_schema`` from inference-schema), or with the request object
(``@rawhttp``); ``request_headers`` too when ``run`` has such a parameter.

Standard library only: this runs on the user environment's interpreter. inference-schema is
used only when the script imported it (the environment holds it, as in Azure).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple

MODULE_NAME = "entry_module"  # the name azmlinfsrv imports score.py under
SHIMS = str(Path(__file__).with_name("azureml_shims"))
API = "azureml_inference_server_http.api"
ALL_SWAGGER_VERSIONS = ("2.0", "3.0", "3.1")  # inference-schema's names for them
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "example": {}}

Mode = Literal["text", "schema", "raw"]


class ScriptError(Exception):
    """``score.py`` cannot be served: missing functions, a bad ``run`` signature. The message
    says what to change."""


class Parameter(NamedTuple):
    name: str
    default: object  # inspect.Parameter.empty when the body must hold it


class ScoringScript:
    """An imported ``score.py`` (``init()`` not yet called) and how to call its ``run``."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        init, run = getattr(module, "init", None), getattr(module, "run", None)
        where = module.__file__
        if not callable(init):
            raise ScriptError(f"the entry script {where} does not define an init() function")
        if not callable(run):
            raise ScriptError(f"the entry script {where} does not define a run() function")
        self.init: Callable[[], object] = init
        self.run: Callable[..., object] = run
        self.inputs, self.wants_headers = _run_parameters(run)
        self.input_name = self.inputs[0].name
        self.mode: Mode = _mode(run)
        self.schemas, self.swagger_versions = _swagger_facts(run)

    def call(self, inputs: dict[str, object], headers: dict[str, str]) -> object:
        if self.wants_headers:
            return self.run(**inputs, request_headers=headers)
        return self.run(**inputs)


def _run_parameters(run: Callable[..., object]) -> tuple[list[Parameter], bool]:
    """The parameters that receive input (in order), and whether ``run`` asks for the request
    headers (a parameter named ``request_headers``)."""
    params = list(inspect.signature(run).parameters.values())
    allowed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in allowed for p in params):
        raise ScriptError("run() cannot accept positional-only arguments, *args, or **kwargs")
    wants_headers = any(p.name == "request_headers" for p in params)
    inputs = [Parameter(p.name, p.default) for p in params if p.name != "request_headers"]
    if not inputs:
        raise ScriptError("run() needs to accept an argument for input data, e.g. run(raw_data)")
    return inputs, wants_headers


def _schema_util() -> ModuleType | None:
    """inference-schema's ``schema_util`` if the script imported inference-schema."""
    return sys.modules.get("inference_schema.schema_util")


def _mode(run: Callable[..., object]) -> Mode:
    raw = getattr(sys.modules.get(f"{API}.aml_request"), "_rawHttpRequested", False)
    util = _schema_util()
    decorated = util is not None and bool(util.is_schema_decorated(run))
    if raw and decorated:
        raise ScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
    return "raw" if raw else "schema" if decorated else "text"


def _swagger_facts(run: Callable[..., object]) -> tuple[tuple[Any, Any], tuple[str, ...]]:
    """(input schema, output schema) for the swagger document, and the swagger versions
    (``2.0``, ``3.0``, ``3.1``) they can be written in."""
    util = _schema_util()
    if util is None:
        return (_EMPTY_SCHEMA, _EMPTY_SCHEMA), ALL_SWAGGER_VERSIONS
    versions = tuple(util.get_supported_versions(run))
    if not util.is_schema_decorated(run):
        return (_EMPTY_SCHEMA, _EMPTY_SCHEMA), versions
    return (util.get_input_schema(run), util.get_output_schema(run)), versions


def provide_raw_http_modules() -> None:
    """Make ``azureml_inference_server_http.api.aml_request``/``aml_response`` importable (the
    real package if the environment holds it, else Kiln's stand-ins) and, as azmlinfsrv does,
    the older ``azureml.contrib.services`` paths the same modules."""
    real = importlib.util.find_spec("azureml_inference_server_http") is not None
    if not real and SHIMS not in sys.path:
        sys.path.append(SHIMS)
    for name in ("aml_request", "aml_response"):
        sys.modules[f"azureml.contrib.services.{name}"] = importlib.import_module(f"{API}.{name}")


def load(entry_script: str) -> ScoringScript:
    """Import ``entry_script`` as ``entry_module`` and check it (``init`` is not called)."""
    if not Path(entry_script).is_file():
        raise ScriptError(f"the entry script {entry_script} does not exist")
    provide_raw_http_modules()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, entry_script)
    if spec is None or spec.loader is None:
        raise ScriptError(f"the entry script {entry_script} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return ScoringScript(module)
