"""The fuzz suite's settings: one Hypothesis profile, bounded so the whole folder runs in about
a minute on a 2-core machine (``pytest -n 2 tests/fuzz``). ``KILN_FUZZ_EXAMPLES`` raises the
number of examples for a longer hunt. The profile is registered here and used by name in the
tests (``settings.get_profile``), so it never changes the settings of other folders."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "kiln-fuzz",
    max_examples=int(os.environ.get("KILN_FUZZ_EXAMPLES", "300")),
    deadline=None,  # a first call imports pydantic models: timing says nothing here
    database=None,  # no .hypothesis folder in the worktree; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
