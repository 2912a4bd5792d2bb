"""The image tests' fixtures come from the kilntesting.images plugin. A conftest below the
root may not declare ``pytest_plugins``, so they are imported here until tests/conftest.py
registers the plugin for the whole suite (then these imports go)."""

from __future__ import annotations

from kilntesting.images import base_image as base_image
from kilntesting.images import container_engine as container_engine
from kilntesting.images import engine_store as engine_store
from kilntesting.images import image_registry as image_registry
