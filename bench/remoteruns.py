"""Benchmark: runs through a ``kiln server`` against the same commands on a workspace folder.

One trivial script in a warm python-only environment, the same machine, the server on
127.0.0.1 serving a workspace folder (SQLite). Interleaved rounds of:

- ``kiln run submit --env bench train.py`` (recorded, watched to its end, log uploaded);
- ``kiln run show ID --json`` and ``kiln run list --json``;

on the folder, and with ``KILN_WORKSPACE=http://127.0.0.1:PORT`` as a contributor. The table
gives medians and the server/folder ratio.

Run: ``python bench/remoteruns.py [--repeat N]``. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KILN = [sys.executable, "-m", "kiln"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def kiln(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([*KILN, *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    began = time.perf_counter()
    out = kiln(env, *args)
    return time.perf_counter() - began, out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str]:
    where = ["--workspace", str(root / "served")]
    made = json.loads(kiln(env, "server", "create-admin", "admin", *where, "--json"))
    port = free_port()
    log = (root / "server.log").open("ab")
    server = subprocess.Popen([*KILN, "server", *where, "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    answer = httpx.post(f"{url}/api/v1/tokens", json={"owner": "bench", "role": "contributor"},
                        headers={"Authorization": f"Bearer {made['token']}"}, timeout=30)  # fmt: skip
    return server, url, str(answer.json()["token"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-remoteruns-"))
    base = {**os.environ, "KILN_CACHE_DIR": str(root / "cache"), "KILN_CONFIG_DIR": str(root / "c"),
            "KILN_DATA_DIR": str(root / "data")}  # fmt: skip
    kiln(base, "init", str(root / "folder"))
    server, url, token = start_server(root, base)
    try:
        sides = {
            "folder": {**base, "KILN_WORKSPACE": str(root / "folder")},
            "server": {**base, "KILN_WORKSPACE": url, "KILN_TOKEN": token},
        }
        (root / "src").mkdir()
        (root / "src" / "train.py").write_text("print('hello')\n")
        (root / "env.yml").write_text("name: bench\npython: {version: '3.11'}\n")
        submit = ["run", "submit", "--env", "bench", "-d", str(root / "src"), "--json", "train.py"]
        times: dict[tuple[str, str], list[float]] = {}
        for env in sides.values():  # registered and built once: the rounds are warm
            kiln(env, "env", "register", "-f", str(root / "env.yml"))
            kiln(env, *submit)
        for round_ in range(repeat):
            say(f"round {round_ + 1}/{repeat}")
            for side, env in sides.items():
                seconds, out = timed(env, *submit)
                times.setdefault(("run submit", side), []).append(seconds)
                run_id = json.loads(out)["id"]
                for name, args in (("run show --json", ["run", "show", run_id, "--json"]),
                                   ("run list --json", ["run", "list", "--json"])):  # fmt: skip
                    times.setdefault((name, side), []).append(timed(env, *args)[0])
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"| command | folder (s) | server (s) | server / folder |  (median of {repeat})")
    print("| --- | --- | --- | --- |")
    for name in ("run submit", "run show --json", "run list --json"):
        folder = statistics.median(times[(name, "folder")])
        served = statistics.median(times[(name, "server")])
        print(f"| {name} | {folder:.3f} | {served:.3f} | {served / folder:.2f}x |")


if __name__ == "__main__":
    main()
