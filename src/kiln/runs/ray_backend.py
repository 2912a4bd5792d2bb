"""Moved to ``kiln.compute.ray_jobs``; this name stays for ``bench/`` until it imports that."""

from __future__ import annotations

from kiln.compute.ray_jobs import dashboard_url as dashboard_url
