"""Fixtures for the serving tests live in plain modules (importing them registers them)."""

from runtest import *  # noqa: F403
from servingtest import *  # noqa: F403
