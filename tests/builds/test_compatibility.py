"""Packages known to be awkward to install or import build from the real package index, and a
command in the built environment imports each of them.

How the sweep was chosen: the packages issue 14 names (pyarrow and duckdb, at the releases
whose build the old import check failed), then popular packages with what makes installs and
imports go wrong: compiled extensions with bundled native libraries (grpcio, shapely, pillow,
opencv-python-headless, lxml, h5py, pyzmq, psycopg's binary extra), LLVM (numba via
llvmlite), OpenMP from the system (lightgbm needs libgomp), Rust extensions (tokenizers,
cryptography, orjson), namespace packages (protobuf's ``google``), and a large scientific
stack (scipy, pandas, matplotlib). xgboost was left out: its Linux wheel pulls NVIDIA's NCCL
(hundreds of MB), too much for every CI run. Every pin is a release that installs on
CPython 3.11 for x86-64 Linux; together about 270 MB of wheels, fetched once into a uv cache
kept between runs (under /var/cache/kiln-test, as the base image), then hard-linked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.builds import ensure_built
from kiln.cache import Cache
from kiln.workspace import Workspace
from kilntesting import images
from kilntesting.builds import definition, register
from kilntesting.cli import run_kiln

# (requirement, the modules a user imports from it)
SWEEP = [
    ("pyarrow==18.1.0", ["pyarrow", "pyarrow.parquet"]),
    ("duckdb==1.1.3", ["duckdb"]),
    ("grpcio==1.85.3", ["grpc"]),
    ("protobuf==7.36.2", ["google.protobuf"]),
    ("numba==0.68.1", ["numba"]),
    ("lightgbm==4.7.0", ["lightgbm"]),
    ("pyzmq==27.3.0", ["zmq"]),
    ("shapely==2.2.0", ["shapely"]),
    ("pillow==13.0.0", ["PIL.Image"]),
    ("matplotlib==3.11.2", ["matplotlib.pyplot"]),
    ("scipy==1.17.1", ["scipy.sparse", "scipy.optimize"]),
    ("tokenizers==0.23.3", ["tokenizers"]),
    ("opencv-python-headless==5.1.0.95", ["cv2"]),
    ("psycopg[binary]==3.3.9", ["psycopg"]),
    ("lxml==6.2.0", ["lxml.etree"]),
    ("cryptography==50.0.2", ["cryptography.fernet"]),
    ("h5py==3.16.0", ["h5py"]),
    ("orjson==3.13.0", ["orjson"]),
    ("pandas==3.1.1", ["pandas"]),
    ("pyyaml==6.0.4", ["yaml"]),
    ("regex==2026.12.2", ["regex"]),
]


@pytest.fixture(name="kept_uv_cache")
def kept_uv_cache(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test's build cache with uv's package cache linked to one kept between test runs
    (the session's temporary one where that folder is not writable)."""
    kept = images.cache_dir() / "uv-packages"
    try:
        kept.mkdir(parents=True, exist_ok=True)
    except OSError:
        kept = tmp_path_factory.getbasetemp() / "uv-packages"
        kept.mkdir(exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "uv").symlink_to(kept, target_is_directory=True)
    return kept


def test_pyarrow_and_duckdb_build_and_import_when_asked(
    sqlite_workspace: Workspace, cache_dir: Path, kept_uv_cache: Path
) -> None:
    # The releases the old check refused: "import __dummy__ (from pyarrow) failed" and
    # "import adbc_driver_duckdb ... No module named 'adbc_driver_manager'".
    data = definition("arrow", ["pyarrow==18.1.0", "duckdb==1.1.3"], None)
    data["python"]["check_imports"] = ["pyarrow", "duckdb"]

    built = ensure_built(sqlite_workspace, register(sqlite_workspace, data), cache=Cache(cache_dir))

    assert built.built_now


def test_awkward_packages_build_and_each_imports_in_the_environment(
    sqlite_workspace: Workspace, cache_dir: Path, kept_uv_cache: Path, cli_env: dict[str, str]
) -> None:
    record = register(sqlite_workspace, definition("sweep", [r for r, _ in SWEEP], None))
    built = ensure_built(sqlite_workspace, record, cache=Cache(cache_dir))
    assert built.built_now

    modules = [m for _, names in SWEEP for m in names]
    code = f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\nprint('ok')"
    env = {**cli_env, "MPLBACKEND": "Agg", "PATH": os.environ["PATH"]}
    result = run_kiln("env", "exec", "sweep", "--", "python", "-c", code, env=env, check=False)

    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]
