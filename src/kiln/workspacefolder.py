# ruff: noqa: PTH113, PTH118, PTH120 - str paths: pathlib imports re, which the lane avoids
"""Where a workspace's files are, as plain strings: ``os`` only, so the exec card lane
(kiln.execcard) finds the workspace as ``Workspace.discover`` does without pathlib or json."""

from __future__ import annotations

import os

WORKSPACE_DIR = ".kiln"
CONFIG_FILE = "workspace.json"
REGISTRY_FILE = "registry.db"


def find_upward(start: str) -> str | None:
    """The nearest folder at or above ``start`` (absolute) holding ``.kiln/workspace.json``,
    as git finds ``.git``."""
    folder = start
    while True:
        if os.path.isfile(os.path.join(folder, WORKSPACE_DIR, CONFIG_FILE)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def is_server_url(text: str) -> bool:
    """True for a team server's address (``http://HOST:PORT``) given as a workspace."""
    return text.startswith(("http://", "https://"))
