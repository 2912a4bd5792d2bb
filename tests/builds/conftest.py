"""Fixtures for the build tests live in buildtest.py (a plain module the tests import from);
importing them here is what registers them with pytest."""

from buildtest import *  # noqa: F403
