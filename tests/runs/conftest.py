"""Fixtures for the run tests live in plain modules (importing them registers them)."""

from raycluster import *  # noqa: F403
from runtest import *  # noqa: F403
