"""Kiln's test helpers, one package importable from every test folder (pytest puts tests/, the
root conftest's folder, on ``sys.path``). Test files import helpers from here by name, never
from a conftest.

- ``cli``: ``run_kiln`` (the real CLI in a subprocess, its ``--json`` checked against the
  published schema), ``KILN``, ``REPO``, ``error_of``, ``run_or_fail``, ``cached_venv``.
- ``builds``: wheels made on the spot (``make_wheel``), a PEP 503 ``PackageIndex`` served on
  127.0.0.1, definitions, registration and build-record queries for the build tests.
- ``conda_channel``: a local conda channel of hand-made noarch packages, indexed by rattler.
- ``runs``: scripts to run, the CLI on a workspace and cache, ``run show --json``.
- ``raycluster``: a real local Ray cluster (a head and one worker node).
- ``serving``: Kiln's scoring runtime as a real process and tiny HTTP clients.
- ``fixtures``: the pytest plugin with the shared fixtures (``package_index``, ``cli_env``,
  ``shared_cache``, ``project``, ``ray_cluster``, ``serve``), registered in tests/conftest.py.
- ``caches``: the autouse ``cache_dir`` fixtures, imported by name by the folder conftests
  (a cold cache per build test; one cache per session for the run and serving tests).
"""
