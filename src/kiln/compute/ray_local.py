"""Start a throwaway local Ray cluster on loopback for tests, benchmarks and ``kiln`` demos.

One head node plus ``worker_nodes`` extra nodes, each a ``ray start --block`` in a process group
of its own, every port one the operating system just handed out (nothing fixed, so several
clusters can run side by side, e.g. one per pytest-xdist worker). Stopping kills exactly those
process groups, then any straggler whose command line names this cluster's temporary folder:
never a machine-wide ``ray stop``, which would take other people's clusters down too.

Loopback only, which Ray 2.x makes awkward: ``--node-ip-address=127.0.0.1`` is silently replaced
by the machine's network address (``resolve_ip_for_localhost``) unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; with that setting every server binds 127.0.0.1 (checked
with ``ss -ltn``), but ``ray start --address`` then refuses to add a node. So every node runs with
that setting, and extra nodes start through a two-line launcher that lifts the refusal and keeps
the loopback address as given. The two fixed metrics ports (44217, 44227) are moved to free ones
through their environment variables. Linux only (process groups, /proc).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import KilnError

HOST = "127.0.0.1"
_WORKER_PORTS = 12  # ports a node's worker processes may listen on (one per live worker)
_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
_HEAD = "from ray.scripts.scripts import main; main()"
_EXTRA_NODE = (
    "import ray._private.ray_constants as c, ray._private.services as s\n"
    "c.ENABLE_RAY_CLUSTER = True; s.resolve_ip_for_localhost = str\n" + _HEAD
)


class LocalClusterError(KilnError):
    """A throwaway local cluster did not come up."""


@dataclass(frozen=True)
class LocalCluster:
    address: str  # ray://127.0.0.1:DASHBOARD_PORT, the form Kiln users pass
    dashboard_url: str  # http://127.0.0.1:DASHBOARD_PORT
    gcs_address: str  # 127.0.0.1:GCS_PORT, what ``ray start --address`` and ray.init take
    temp_dir: Path
    processes: tuple[subprocess.Popen[bytes], ...] = ()
    startup_seconds: float = 0.0


def _free_ports(count: int) -> list[int]:
    """Ports free right now; all held open together so none is handed out twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _node_command(
    temp_dir: Path, num_cpus: int, head_ports: list[int] | None, gcs: str
) -> list[str]:
    ports = _free_ports(6 + _WORKER_PORTS)
    common = [
        "start", "--block", "--disable-usage-stats", f"--node-ip-address={HOST}",
        f"--num-cpus={num_cpus}", "--num-gpus=0", f"--object-store-memory={100 * 2**20}",
        f"--temp-dir={temp_dir}", f"--object-manager-port={ports[0]}",
        f"--node-manager-port={ports[1]}", f"--dashboard-agent-listen-port={ports[2]}",
        f"--dashboard-agent-grpc-port={ports[3]}", f"--runtime-env-agent-port={ports[4]}",
        f"--metrics-export-port={ports[5]}",
        "--worker-port-list=" + ",".join(str(p) for p in ports[6:]),
    ]  # fmt: skip
    if head_ports is None:
        return [sys.executable, "-c", _EXTRA_NODE, *common, f"--address={gcs}"]
    gcs_port, dashboard_port, client_port = head_ports[:3]
    return [
        sys.executable, "-c", _HEAD, *common, "--head", f"--port={gcs_port}",
        "--include-dashboard=true", f"--dashboard-host={HOST}",
        f"--dashboard-port={dashboard_port}", f"--ray-client-server-port={client_port}",
    ]  # fmt: skip


def _spawn(command: list[str], log: Path, metrics_ports: list[int]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **_LOOPBACK,
        "RAY_USAGE_STATS_ENABLED": "0",
        # A broken environment fails after one attempt, not three (each clones a virtualenv).
        "RUNTIME_ENV_RETRY_TIMES": "1",
        # uv's cache for the runtime_env installs: inside the cluster's folder, not the home.
        "UV_CACHE_DIR": str(log.parent / "uv-cache"),
        "AUTOSCALER_METRIC_PORT": str(metrics_ports[0]),
        "DASHBOARD_METRIC_PORT": str(metrics_ports[1]),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip


def _alive_nodes(dashboard_url: str) -> int:
    with urllib.request.urlopen(f"{dashboard_url}/nodes?view=summary", timeout=2) as answer:
        summary = json.load(answer)["data"]["summary"]
    return sum(1 for node in summary if node.get("raylet", {}).get("state") == "ALIVE")


def _listens(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


def _tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def _wait_for(
    condition: str,
    ready: Callable[[], bool],
    processes: list[subprocess.Popen[bytes]],
    log: Path,
    deadline: float,
) -> None:
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise LocalClusterError(
                    f"`ray start` exited with {process.returncode} before {condition}; "
                    f"its output is in {log}: {_tail(log)}"
                )
        with contextlib.suppress(OSError, ValueError, KeyError):
            if ready():
                return
        time.sleep(0.2)
    raise LocalClusterError(f"timed out waiting until {condition}; see {log}: {_tail(log)}")


def start_local_cluster(
    *, num_cpus: int = 1, worker_nodes: int = 1, timeout: float = 120.0
) -> LocalCluster:
    """A head node plus ``worker_nodes`` nodes on 127.0.0.1, ready to take jobs."""
    if importlib.util.find_spec("ray") is None:
        raise LocalClusterError("Ray is not installed: pip install 'kiln[ray]' (ray[default])")
    began = time.monotonic()
    # Short on purpose: Ray puts unix sockets under it and their paths are limited to 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp" if Path("/tmp").is_dir() else None))
    log = temp_dir / "start.log"
    head_ports = _free_ports(5)  # GCS, dashboard, Ray client server, two metrics ports
    gcs = f"{HOST}:{head_ports[0]}"
    dashboard_url = f"http://{HOST}:{head_ports[1]}"
    cluster = LocalCluster(f"ray://{HOST}:{head_ports[1]}", dashboard_url, gcs, temp_dir)
    processes: list[subprocess.Popen[bytes]] = []
    deadline = began + timeout
    try:
        head = _node_command(temp_dir, num_cpus, head_ports, gcs)
        processes.append(_spawn(head, log, head_ports[3:]))
        # Extra nodes only need the GCS: start them while the head's dashboard is still coming up.
        _wait_for("the head's GCS listens", lambda: _listens(head_ports[0]), processes, log, deadline)  # fmt: skip
        for _ in range(worker_nodes):
            extra = _node_command(temp_dir, num_cpus, None, gcs)
            processes.append(_spawn(extra, log, head_ports[3:]))
        wanted = 1 + worker_nodes
        _wait_for(f"{wanted} nodes are up", lambda: _alive_nodes(dashboard_url) >= wanted, processes, log, deadline)  # fmt: skip
    except BaseException:
        stop_local_cluster(dataclasses.replace(cluster, processes=tuple(processes)))
        raise
    seconds = time.monotonic() - began
    return dataclasses.replace(cluster, processes=tuple(processes), startup_seconds=seconds)


def _stragglers(temp_dir: Path) -> list[int]:
    """Processes of this cluster outside its process groups: their command line names its
    temporary folder, which is unique to it."""
    marker = str(temp_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def stop_local_cluster(cluster: LocalCluster) -> None:
    """Kill exactly the processes this cluster started, then remove its temporary folder.

    SIGKILL straight away: a throwaway cluster has nothing to save, and Ray's own SIGTERM path
    took over 10 s here."""
    for process in cluster.processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for process in cluster.processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    for _ in range(3):  # a worker forked meanwhile shows up on the next pass
        stragglers = _stragglers(cluster.temp_dir)
        if not stragglers:
            break
        for pid in stragglers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


@contextlib.contextmanager
def local_cluster(*, num_cpus: int = 1, worker_nodes: int = 1) -> Iterator[LocalCluster]:
    """A cluster for the duration of a ``with`` block."""
    cluster = start_local_cluster(num_cpus=num_cpus, worker_nodes=worker_nodes)
    try:
        yield cluster
    finally:
        stop_local_cluster(cluster)
