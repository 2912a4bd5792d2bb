"""Compute targets: where a run's script executes (a local process, a Ray cluster).

Each kind of target is one module behind the ``ComputeTarget`` Protocol of ``base`` (its
docstrings are the guide to writing the next one), registered in ``registry.TARGETS``.
``runfolder`` is the plumbing every target shares: the run's folder, its log writer, its outputs.
Runs' core (``kiln.runs``) knows targets only through the registry; no target imports another.

This package's ``__init__`` stays standard-library only: ``ray_launch`` runs on Ray workers,
and ``kiln.sdk.runs`` (importable inside a training script) reads ``DEFAULT_TARGET`` from here,
as ``kiln.runs.context`` reads the variables below.
"""

from __future__ import annotations

DEFAULT_TARGET = "local"  # the address of the local target, and the default of every face

# What every target gives a script (``kiln.runs.context`` reads them inside the script).
RUN_ID_VARIABLE = "KILN_RUN_ID"
RUN_DIR_VARIABLE = "KILN_RUN_DIR"
