"""The server's memory of verified tokens (server/auth.py): how long, how many, and off."""

from __future__ import annotations

import pytest

from kiln.accounts import Actor
from kiln.server.auth import CACHE_VARIABLE, TOKEN_CACHE_SECONDS, TokenCache, token_cache


class Clock:
    """A clock the test moves: the cache's window is about time, and waiting would be slow."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_for_its_window_only() -> None:
    clock = Clock()
    cache = TokenCache(5.0, clock=clock)
    ann = Actor("ann", "reader")
    assert cache.get("digest") is None
    cache.put("digest", ann)
    clock.now += 4.9
    assert cache.get("digest") == ann
    clock.now += 0.1
    assert cache.get("digest") is None  # verified again against the registry from now on
    cache.put("digest", ann)
    cache.clear()
    assert cache.get("digest") is None


def test_no_window_means_no_memory() -> None:
    cache = TokenCache(0.0)
    cache.put("digest", Actor("ann", "reader"))
    assert cache.get("digest") is None


def test_the_cache_stays_bounded() -> None:
    cache = TokenCache(5.0)
    for number in range(10_000):
        cache.put(f"digest-{number}", Actor("ann", "reader"))
    assert len(cache._actors) <= 4096


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("", TOKEN_CACHE_SECONDS), ("0", 0.0), ("2.5", 2.5), ("600", 60.0), ("soon", 5.0)],
)
def test_the_window_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str, seconds: float
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, text)
    assert token_cache().seconds == seconds
