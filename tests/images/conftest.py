"""The image tests: a cold build cache for every test (the autouse ``cache_dir``); the
container fixtures come from the kilntesting.images plugin (registered in tests/conftest.py)."""

from __future__ import annotations

from kilntesting.caches import cold_cache_dir as cold_cache_dir
