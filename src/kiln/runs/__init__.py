"""Runs: a script, a snapshot of its folder and a built environment, executed on a compute
target (``kiln.compute``: a local process, a Ray cluster), with its history in the workspace.

Modules: ``core`` (the functions every face calls: submit, list, describe, download, named
targets), ``store`` (the run records), ``snapshot`` (source folders into the artifact store),
``submission`` (from a request to a recorded run; cancel), ``execution`` (the watcher: carry a
run to its end on its target), ``ending`` (record the end; ``settle`` runs whose watcher died),
``targets`` (named compute targets), ``views`` (details, files, live log), ``served`` (what a
team server does for its clients' runs: their record writes, with who may make them), ``context``
(``Run.get_context()`` inside a script: standard library only, since it runs in the user's
environment), ``sdk`` (Azure ML's names: ``Experiment``, ``ScriptRunConfig``, ``Run``).
"""
