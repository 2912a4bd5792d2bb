"""Image benchmark (issue 10, item 10): Kiln's image builder against `podman build` of the
Dockerfile uv's Docker guide recommends for a locked requirements file; same lock, same base,
same machine, interleaved rounds. One table:

- cold build (an empty engine store, a fresh Kiln cache, a warm uv cache on both sides) and warm
  build (the base already in the store), including the push to the registry;
- a rebuild after changing one package: seconds, and bytes the registry stored (its blob
  storage growth) against that package's wheel;
- pulling on a second, empty store against building there;
- image sizes, and whether the digest is the same when the same lock is built again.

Both sides install the same real wheels (numpy, packaging, six; `pip download`ed once into
/var/tmp/kiln-bench-wheels) from a local index on 127.0.0.1, so the network does not dominate.
The registry (Debian's docker-registry) and the base image (scripts/containers.sh's tarball)
are started as kilntesting.images starts them. Progress on stderr, the table on stdout.

Run: ``PYTHONPATH=src:tests python bench/images.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from imagehelpers import (
    Failed,
    blob_sizes,
    clean_env,
    download_wheels,
    fresh_store,
    image_size,
    link_tree,
    log,
    median,
    phases,
    publish,
    repository_blobs,
    run,
    table,
    traced,
)
from kiln import catalog
from kiln.builders.uvtool import uv_binary
from kiln.environment.definition import EnvironmentDefinition
from kiln.lockexport import to_requirements
from kiln.workspace import Workspace
from kilntesting.builds import served_index
from kilntesting.images import (
    BASE_REPOSITORY,
    ImageRegistry,
    base_image_version,
    import_base_image,
    read_base_metadata,
    served_registry,
)

PACKAGES = ["numpy==2.4.6", "packaging==26.3", "six==1.17.0"]
CHANGED_FROM, CHANGED_TO = "packaging==26.3", "packaging==26.2"
# uv's Docker guide ("Using the pip interface": a virtual environment, "Installing
# requirements"; "Optimizations": bytecode, copy link mode, uv mounted only while it runs).
# The guide's cache mount is given as `podman build -v` of a warm uv cache instead, so both
# sides start from the same warm cache even in an empty engine store.
DOCKERFILE = """\
FROM {base}
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1
RUN --mount=type=bind,source=uv,target=/bin/uv uv venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"
WORKDIR /app
COPY requirements.txt .
RUN --mount=type=bind,source=uv,target=/bin/uv uv pip install -r requirements.txt
"""


class Bench:
    def __init__(self, root: Path, registry: ImageRegistry, base_ref: str, index_url: str):
        self.root, self.registry, self.base_ref, self.index_url = (
            root,
            registry,
            base_ref,
            index_url,
        )
        self.kiln = str(Path(sys.executable).parent / "kiln")
        self.workspace = root / "ws"
        self.serial = 0
        self.warm_uv = root / "warm-uv"
        self.requirements: dict[int, str] = {}
        # Seconds per phase of Kiln's runs, by "verb version" (from its stderr phase lines).
        self.phases: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        (root / "xdg-cache").mkdir()

    def fresh(self, stem: str) -> Path:
        self.serial += 1
        return self.root / f"{stem}-{self.serial}"

    def registry_url(self, prefix: str) -> str:
        return f"{self.registry.url}/{prefix}"

    # -- Kiln --------------------------------------------------------------------------------

    def register(self) -> None:
        ws = Workspace.create(self.workspace)
        for packages in (PACKAGES, [CHANGED_TO if p == CHANGED_FROM else p for p in PACKAGES]):
            definition = {
                "name": "bench",
                "python": {"pip": {"packages": packages, "index_url": self.index_url}},
                "docker": {"base_image": self.base_ref},
            }
            catalog.register(ws, EnvironmentDefinition.model_validate(definition))
        ws.close()

    def kiln_cache(self) -> Path:
        cache = self.fresh("kiln-cache")
        cache.mkdir()
        link_tree(self.warm_uv, cache / "uv")
        return cache

    def kiln_image(
        self,
        verb: str,
        version: int,
        cache: Path,
        store: dict[str, str],
        prefix: str,
        label: str = "",
    ) -> tuple[float, dict[str, Any]]:
        """``kiln image VERB bench:VERSION --json``; its phases are kept under ``label``."""
        env = clean_env(
            self.root,
            KILN_WORKSPACE=str(self.workspace),
            KILN_CACHE_DIR=str(cache),
            KILN_IMAGE_REGISTRY=self.registry_url(prefix),
            **store,
        )
        command = [self.kiln, "image", verb, f"bench:{version}", "--json"]
        seconds, out, trace = traced(command, env)
        for phase, spent in phases(trace, seconds, f"image bench:{version}").items():
            if label:
                self.phases[label][phase].append(spent)
        return seconds, json.loads(out)

    def setup_locks(self) -> None:
        """Kiln resolves both versions once (untimed): the locks both sides install, and the
        warm uv cache every measured build starts from."""
        cache = self.fresh("setup-cache")
        with fresh_store(self.root, "setup-store") as store:
            for version in (1, 2):
                self.kiln_image("build", version, cache, store.env, "setup")
        shutil.copytree(cache / "uv", self.warm_uv, symlinks=True)
        from kiln.builders.venv import LOCK_FORMAT

        for path in cache.rglob("kiln-lock.toml"):
            text = path.read_text()
            version = 2 if f'"{CHANGED_TO.split("==")[1]}"' in text else 1
            body = to_requirements(LOCK_FORMAT, text, header="the lock Kiln resolved")
            self.requirements[version] = f"--index-url {self.index_url}\n{body}\n"
        assert set(self.requirements) == {1, 2}, f"locks found: {sorted(self.requirements)}"
        shutil.rmtree(cache, ignore_errors=True)

    # -- the Dockerfile ----------------------------------------------------------------------

    def context(self, version: int) -> Path:
        folder = self.fresh("context")
        folder.mkdir()
        (folder / "Dockerfile").write_text(DOCKERFILE.format(base=self.base_ref))
        (folder / "requirements.txt").write_text(self.requirements[version])
        try:
            os.link(uv_binary(), folder / "uv")
        except OSError:
            shutil.copy2(uv_binary(), folder / "uv")
        return folder

    def podman_build(self, version: int, store: dict[str, str], tag: str) -> tuple[float, str]:
        uv_cache = self.fresh("podman-uv")
        link_tree(self.warm_uv, uv_cache)
        context = self.context(version)
        command = [
            "podman", "build", "-q", "--network=host", "--tls-verify=false",
            f"--volume={uv_cache}:/root/.cache/uv", "-t", tag, str(context),
        ]  # fmt: skip
        seconds, _ = run(command, clean_env(self.root, **store))
        shutil.rmtree(context, ignore_errors=True)
        shutil.rmtree(uv_cache, ignore_errors=True)
        return seconds, tag

    def podman_push(self, tag: str, remote: str, store: dict[str, str]) -> tuple[float, str]:
        digest_file = self.fresh("digest")
        command = ["podman", "push", "-q", "--tls-verify=false", f"--digestfile={digest_file}"]
        seconds, _ = run([*command, tag, f"docker://{remote}"], clean_env(self.root, **store))
        return seconds, digest_file.read_text().strip()

    def podman_pull(self, remote: str, store: dict[str, str]) -> float:
        command = ["podman", "pull", "-q", "--tls-verify=false", remote]
        return run(command, clean_env(self.root, **store))[0]

    def pull_base(self, store: dict[str, str]) -> None:
        self.podman_pull(self.base_ref, store)


Results = dict[str, list[float]]


def kiln_round(bench: Bench, number: int, results: Results, digests: dict[str, set[str]]) -> None:
    # Cold: empty store, fresh cache (warm uv); then a second empty store pulls it.
    prefix = f"kiln{number}cold"
    with fresh_store(bench.root, f"kiln-cold-{number}") as store:
        seconds, info = bench.kiln_image(
            "build", 1, bench.kiln_cache(), store.env, prefix, "cold build"
        )
        assert info["action"] == "built", info
        results["kiln cold"].append(seconds)
        results["kiln size"].append(image_size(info["image"], clean_env(bench.root, **store.env)))
        digests["kiln"].add(info["digest"])
    with fresh_store(bench.root, f"kiln-pull-{number}") as store:
        seconds, info = bench.kiln_image("pull", 1, bench.kiln_cache(), store.env, prefix, "pull")
        assert info["action"] == "pulled", info
        results["kiln pull"].append(seconds)
        digests["kiln pulled"].add(info["digest"])
    # Warm: the base in the store; then the one-package change, in the same store and cache.
    prefix = f"kiln{number}warm"
    with fresh_store(bench.root, f"kiln-warm-{number}") as store:
        bench.pull_base(store.env)
        cache = bench.kiln_cache()
        seconds, info = bench.kiln_image("build", 1, cache, store.env, prefix, "warm build")
        assert info["action"] == "built", info
        results["kiln warm"].append(seconds)
        digests["kiln"].add(info["digest"])
        before = repository_blobs(bench.registry.root, f"{prefix}/kiln/env")
        seconds, info = bench.kiln_image("build", 2, cache, store.env, prefix, "rebuild")
        assert info["action"] == "built", info
        results["kiln rebuild"].append(seconds)
        new = repository_blobs(bench.registry.root, f"{prefix}/kiln/env") - before
        results["kiln rebuild bytes"].append(blob_sizes(bench.registry.root, new))
    log(
        f"round {number}: kiln "
        + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results.items() if k.startswith("kiln"))
    )


def dockerfile_round(
    bench: Bench, number: int, results: Results, digests: dict[str, set[str]]
) -> None:
    host = bench.registry.host
    remote = f"{host}/dockerfile{number}cold/env:1"
    with fresh_store(bench.root, f"df-cold-{number}") as store:
        seconds, tag = bench.podman_build(1, store.env, "localhost/bench/dockerfile:1")
        pushed, digest = bench.podman_push(tag, remote, store.env)
        results["df cold build"].append(seconds)
        results["df cold"].append(seconds + pushed)
        results["df size"].append(image_size(tag, clean_env(bench.root, **store.env)))
        digests["dockerfile"].add(digest)
    with fresh_store(bench.root, f"df-pull-{number}") as store:
        results["df pull"].append(bench.podman_pull(remote, store.env))
    remote = f"{host}/dockerfile{number}warm/env"
    with fresh_store(bench.root, f"df-warm-{number}") as store:
        bench.pull_base(store.env)
        seconds, tag = bench.podman_build(1, store.env, "localhost/bench/dockerfile:1")
        pushed, digest = bench.podman_push(tag, f"{remote}:1", store.env)
        results["df warm build"].append(seconds)
        results["df warm"].append(seconds + pushed)
        digests["dockerfile"].add(digest)
        repository = remote.split("/", 1)[1]
        before = repository_blobs(bench.registry.root, repository)
        seconds, tag = bench.podman_build(2, store.env, "localhost/bench/dockerfile:2")
        pushed, _ = bench.podman_push(tag, f"{remote}:2", store.env)
        results["df rebuild"].append(seconds + pushed)
        new = repository_blobs(bench.registry.root, repository) - before
        results["df rebuild bytes"].append(blob_sizes(bench.registry.root, new))
    log(
        f"round {number}: dockerfile "
        + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results.items() if k.startswith("df"))
    )


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load_before = load()
    wheels = download_wheels([*PACKAGES, CHANGED_TO])
    changed_wheel = next(w for w in wheels if w.name.startswith(CHANGED_TO.replace("==", "-")))
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-images-", dir="/var/tmp"))
    results: Results = defaultdict(list)
    digests: dict[str, set[str]] = defaultdict(set)
    try:
        with served_registry(root / "registry") as registry, served_index(root / "index") as index:
            publish(index.root, wheels)
            tarball, meta = read_base_metadata()
            local_ref = f"localhost/{BASE_REPOSITORY}:bookworm-{base_image_version()}"
            import_base_image(local_ref, tarball, meta["tarball_sha256"])
            base_ref = f"{registry.host}/{BASE_REPOSITORY}:bookworm"
            run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                 f"containers-storage:{local_ref}", f"docker://{base_ref}"], dict(os.environ))  # fmt: skip
            bench = Bench(root, registry, base_ref, index.url)
            bench.register()
            log("setup: Kiln resolves both locks and fills the uv cache")
            bench.setup_locks()
            for number in range(1, args.rounds + 1):
                log(f"round {number} of {args.rounds}")
                sides = [kiln_round, dockerfile_round]
                for side in sides if number % 2 else reversed(sides):
                    side(bench, number, results, digests)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\nKiln's image builder vs `podman build` of uv's Docker-guide Dockerfile; medians of "
        f"{args.rounds} interleaved round(s); {' '.join(PACKAGES)} from a local index (real "
        f"wheels); base {BASE_REPOSITORY}:bookworm; {os.cpu_count()} cores shared with other "
        f"users, load average {load_before} at the start, {load()} at the end; "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    change = f"{CHANGED_FROM} -> {CHANGED_TO}"
    print("\n".join(table(results, digests, changed_wheel.stat().st_size, args.rounds, change)))
    print(
        "\nWhere Kiln's time goes (median seconds per phase, start-up = before the first phase line):"
    )
    for run_kind, spent in bench.phases.items():
        print(f"- {run_kind}: " + ", ".join(f"{p} {median(v):.2f}" for p, v in spent.items()))
    print(
        "\nraw seconds/bytes per round: "
        + json.dumps({k: [round(x, 2) for x in v] for k, v in results.items()})
    )


if __name__ == "__main__":
    try:
        main()
    except (Failed, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"benchmark failed: {exc}") from None
