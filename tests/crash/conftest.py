"""The crash-safety suite: ``kill -9`` at random moments of real Kiln processes. The moments
come from one seeded generator; the seed is printed (and kept in the test report), and
``KILN_CRASH_SEED=N`` replays a run. ``KILN_CRASH_ROUNDS`` sets the rounds per test (6)."""

from __future__ import annotations

import os
import random
import time

import pytest


@pytest.fixture
def rng(request: pytest.FixtureRequest, record_property: object) -> random.Random:
    seed = int(os.environ.get("KILN_CRASH_SEED") or time.time_ns() % 1_000_000)
    print(f"crash seed for {request.node.name}: {seed} (replay: KILN_CRASH_SEED={seed})")
    assert callable(record_property)
    record_property("crash_seed", seed)
    return random.Random(f"{seed}:{request.node.name}")


@pytest.fixture
def rounds() -> int:
    return int(os.environ.get("KILN_CRASH_ROUNDS", "6"))
