"""Build lease queries on SQLite and PostgreSQL: one holder at a time, only the holder renews or
releases, and a take-over succeeds for exactly one of the waiters that saw the same holder."""

from __future__ import annotations

import threading

from kiln.registry.engine import write_transaction
from kiln.registry.lease_queries import (
    Holder,
    LeaseKey,
    get_lease,
    insert_lease,
    release_lease,
    renew_lease,
    take_over_lease,
)
from kiln.workspace import Workspace

KEY = LeaseKey("b" * 64, "linux-x86_64-cp311", "venv")
FIRST = Holder("h1", "machine-a", 101, "demo:1")
SECOND = Holder("h2", "machine-b", 202, "demo:1")


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(
    workspace: Workspace,
) -> None:
    engine = workspace.engine
    with write_transaction(engine) as c:
        assert insert_lease(c, key=KEY, holder=FIRST, now=100.0, seconds=60)
    with write_transaction(engine) as c:
        assert not insert_lease(c, key=KEY, holder=SECOND, now=101.0, seconds=60)
        # Another builder of the same build hash and platform is another lease.
        assert insert_lease(c, key=KEY._replace(builder="conda"), holder=SECOND, now=1, seconds=1)
    with engine.connect() as c:
        assert get_lease(c, key=KEY) == {
            **KEY._asdict(),
            **FIRST._asdict(),
            "taken_at": 100.0,
            "heartbeat_at": 100.0,
            "expires_at": 160.0,
        }
    with write_transaction(engine) as c:
        assert renew_lease(c, key=KEY, holder="h1", now=130.0, seconds=60)
        assert not renew_lease(c, key=KEY, holder="h2", now=130.0, seconds=60)
        assert not release_lease(c, key=KEY, holder="h2")
    with engine.connect() as c:
        found = get_lease(c, key=KEY)
        assert found is not None
        assert (found["heartbeat_at"], found["expires_at"]) == (130.0, 190.0)
    with write_transaction(engine) as c:
        assert release_lease(c, key=KEY, holder="h1")
    with engine.connect() as c:
        assert get_lease(c, key=KEY) is None


def test_of_waiters_taking_over_the_same_dead_holder_exactly_one_wins(
    workspace: Workspace,
) -> None:
    with write_transaction(workspace.engine) as c:
        assert insert_lease(c, key=KEY, holder=FIRST, now=100.0, seconds=2)
    barrier = threading.Barrier(4)
    won: list[str] = []

    def take_over(index: int) -> None:
        holder = SECOND._replace(holder=f"w{index}")
        barrier.wait()
        with write_transaction(workspace.engine) as c:
            if take_over_lease(c, key=KEY, holder=holder, previous="h1", now=200.0, seconds=60):
                won.append(holder.holder)

    threads = [threading.Thread(target=take_over, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1
    with workspace.engine.connect() as c:
        found = get_lease(c, key=KEY)
    assert found is not None
    assert (found["holder"], found["host"], found["expires_at"]) == (won[0], "machine-b", 260.0)
    with write_transaction(workspace.engine) as c:  # the dead holder cannot free it any more
        assert not release_lease(c, key=KEY, holder="h1")
