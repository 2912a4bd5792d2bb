"""A real Ray head plus one extra worker node on 127.0.0.1 (the session-scoped ``ray_cluster``
fixture in kilntesting.fixtures starts one per pytest-xdist worker: ports and folders are never
fixed), stopped by killing exactly the processes it started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kiln.compute.ray_local import LocalCluster, start_local_cluster, stop_local_cluster


@contextmanager
def local_ray_cluster() -> Iterator[LocalCluster]:
    """``.address`` is ``ray://127.0.0.1:DASHBOARD_PORT`` (what Kiln users pass),
    ``.dashboard_url`` its ``http://`` form. One CPU per node: this runs on 2-core machines."""
    cluster = start_local_cluster(num_cpus=1, worker_nodes=1)
    try:
        yield cluster
    finally:
        stop_local_cluster(cluster)
