"""The autouse ``cache_dir`` fixtures: which build cache ``KILN_CACHE_DIR`` names depends on
the folder, so these are not in the plugin. Each folder's conftest.py imports the one it means
by name (importing a fixture into a conftest is what registers it for that folder only).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(name="cache_dir", autouse=True)
def cold_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cold build cache for every test (uv's own cache lives inside it): the build tests."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(name="cache_dir", autouse=True)
def shared_cache_dir(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's shared build cache: the run and serving tests build each environment once."""
    monkeypatch.setenv("KILN_CACHE_DIR", str(shared_cache))
    return shared_cache
