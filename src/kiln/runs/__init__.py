"""Runs: a script, a snapshot of its folder and a built environment, executed on a compute
target (a local process or a Ray cluster), with its history kept in the workspace.

Modules: ``store`` (the run records, one SQL for SQLite and PostgreSQL), ``snapshot`` (source
folders into the artifact store), ``submission`` (from a request to a recorded run),
``execution`` (the local target: process group, logs, outputs), ``ray_target`` (Ray job
submission), ``settle`` (runs whose watcher died), ``context`` (``Run.get_context()`` inside a
script: standard library only, since it runs in the user's environment), ``sdk`` (Azure ML's
names: ``Experiment``, ``ScriptRunConfig``, ``Run``).
"""
