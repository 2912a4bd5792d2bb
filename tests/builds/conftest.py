"""The build tests start every test with a cold build cache (the autouse ``cache_dir``)."""

from __future__ import annotations

from kilntesting.caches import cold_cache_dir as cold_cache_dir
