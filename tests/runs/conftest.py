"""The run tests share one build cache per session (the autouse ``cache_dir``)."""

from __future__ import annotations

from kilntesting.caches import shared_cache_dir as shared_cache_dir
