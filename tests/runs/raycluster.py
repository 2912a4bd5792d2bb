"""The ``ray_cluster`` fixture: a real Ray head plus one extra worker node on 127.0.0.1, started
once per test session (once per pytest-xdist worker: ports and folders are never fixed) and
stopped by killing exactly the processes it started. A plain module: conftest.py star-imports it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiln.compute.ray_local import LocalCluster, start_local_cluster, stop_local_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    """``.address`` is ``ray://127.0.0.1:DASHBOARD_PORT`` (what Kiln users pass),
    ``.dashboard_url`` its ``http://`` form. One CPU per node: this runs on 2-core machines."""
    cluster = start_local_cluster(num_cpus=1, worker_nodes=1)
    try:
        yield cluster
    finally:
        stop_local_cluster(cluster)
