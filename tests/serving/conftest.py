"""The serving tests share the session's build cache with the run tests (the autouse
``cache_dir``)."""

from __future__ import annotations

from kilntesting.caches import shared_cache_dir as shared_cache_dir
