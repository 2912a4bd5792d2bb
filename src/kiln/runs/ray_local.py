"""Moved to ``kiln.compute.ray_local``; this name stays for ``bench/`` until it imports that."""

from __future__ import annotations

from kiln.compute.ray_local import LocalCluster as LocalCluster
from kiln.compute.ray_local import local_cluster as local_cluster
