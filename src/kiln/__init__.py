"""Kiln: reproducible, auditable, portable machine-learning environments on your own machines.

The SDK surface mirrors Azure ML's: ``Workspace``, ``Environment``, ``CondaDependencies``,
``Experiment``, ``ScriptRunConfig``, ``Run``.
Names are imported on first use so that ``import kiln`` (and ``kiln --help``) stay fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms: the exec card lane (kiln.execcard) imports this

__version__ = "0.1.0"

_EXPORTS = {
    "Workspace": "kiln.workspace",
    "Environment": "kiln.sdk.environment",
    "CondaDependencies": "kiln.sdk.conda_dependencies",
    "EnvironmentDefinition": "kiln.environment.definition",
    "KilnError": "kiln.errors",
    "Experiment": "kiln.sdk.runs",
    "ScriptRunConfig": "kiln.sdk.runs",
    "Run": "kiln.sdk.runs",
    "Model": "kiln.sdk.serving",
    "InferenceConfig": "kiln.sdk.serving",
    "LocalWebservice": "kiln.sdk.serving",
    "Webservice": "kiln.sdk.serving",
}
__all__ = [
    "CondaDependencies",
    "Environment",
    "EnvironmentDefinition",
    "Experiment",
    "InferenceConfig",
    "KilnError",
    "LocalWebservice",
    "Model",
    "Run",
    "ScriptRunConfig",
    "Webservice",
    "Workspace",
    "__version__",
]

if TYPE_CHECKING:
    from typing import Any

    from kiln.environment.definition import EnvironmentDefinition
    from kiln.errors import KilnError
    from kiln.sdk.conda_dependencies import CondaDependencies
    from kiln.sdk.environment import Environment
    from kiln.sdk.runs import Experiment, Run, ScriptRunConfig
    from kiln.sdk.serving import InferenceConfig, LocalWebservice, Model, Webservice
    from kiln.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")
