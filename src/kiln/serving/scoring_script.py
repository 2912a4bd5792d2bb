"""Loading a user's ``score.py``: import it, check ``init``/``run``, and call ``run`` as Azure ML's
inference server does (the input by its parameter's name, ``request_headers`` when asked for).

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

MODULE_NAME = "entry_module"  # the name azmlinfsrv imports score.py under
_RAW_HTTP_MODULES = (
    "azureml.contrib.services.aml_request",
    "azureml.contrib.services.aml_response",
)
RAW_HTTP_UNSUPPORTED = (
    "Kiln's scoring runtime does not support @rawhttp, AMLRequest or AMLResponse "
    "(azureml.contrib.services): run() receives the request body as text and its return value "
    "is sent as JSON; remove the decorator and return a JSON-serialisable value"
)


class ScriptError(Exception):
    """``score.py`` cannot be served: missing functions, a bad ``run`` signature, an
    unsupported feature. The message says what to change."""


class _RawHttpBlocker(importlib.abc.MetaPathFinder):
    """Refuses ``azureml.contrib.services.aml_request``/``aml_response`` with a clear message
    (even if a package provides them: they build Flask responses this runtime cannot send)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in _RAW_HTTP_MODULES:
            raise ImportError(f"{RAW_HTTP_UNSUPPORTED} (import of {fullname})", name=fullname)
        return None


class ScoringScript:
    """An imported ``score.py`` whose ``init()`` has run, with a ``call`` for requests."""

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
        self.input_name, self.wants_headers = _run_parameters(run)

    def call(self, text: str, headers: dict[str, str]) -> object:
        if self.wants_headers:
            return self.run(**{self.input_name: text, "request_headers": headers})
        return self.run(**{self.input_name: text})


def _run_parameters(run: Callable[..., object]) -> tuple[str, bool]:
    """The name of the parameter that receives the input, and whether ``run`` asks for the
    request headers (a parameter named ``request_headers``)."""
    code = getattr(run, "__code__", None)
    if code is not None and "inference_schema" in code.co_filename:
        raise ScriptError(
            "run() is decorated with @input_schema/@output_schema (inference-schema), which "
            "Kiln's scoring runtime does not support yet: remove the decorators and parse the "
            "JSON body in run()"
        )
    params = list(inspect.signature(run).parameters.values())
    unsupported = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)
    if any(p.kind in (*unsupported, inspect.Parameter.VAR_KEYWORD) for p in params):
        raise ScriptError("run() cannot accept positional-only arguments, *args, or **kwargs")
    wants_headers = any(p.name == "request_headers" for p in params)
    inputs = [p for p in params if p.name != "request_headers"]
    if not inputs:
        raise ScriptError("run() needs to accept an argument for input data, e.g. run(raw_data)")
    return inputs[0].name, wants_headers


def load(entry_script: str) -> ScoringScript:
    """Import ``entry_script`` as ``entry_module`` and check it (``init`` is not called)."""
    if not any(isinstance(f, _RawHttpBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _RawHttpBlocker())
    if not Path(entry_script).is_file():
        raise ScriptError(f"the entry script {entry_script} does not exist")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, entry_script)
    if spec is None or spec.loader is None:
        raise ScriptError(f"the entry script {entry_script} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return ScoringScript(module)
