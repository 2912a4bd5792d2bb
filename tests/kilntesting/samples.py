"""A registry holding one of every kind of definition a reader must show: tags and description,
every pip option, conda channels, each docker source, spark, inference routes, a user-managed
interpreter, archived versions, builds shared with each other and with a curated environment,
and records stored before today's secret rules (a plain-text secret variable, a channel
password), which every view must mask."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.workspace import Workspace

DEFINITIONS: list[dict[str, Any]] = [
    {"name": "plain", "python": {"version": "3.11", "pip": {"packages": ["numpy==2.0.0"]}}},
    {"name": "plain", "python": {"version": "3.11", "pip": {"packages": ["numpy==2.1.0"]}}},
    {"name": "plain-copy", "python": {"version": "3.11", "pip": {"packages": ["numpy==2.1.0"]}}},
    {"name": "bare", "python": {"version": "3.11"}},  # the build of Kiln-minimal-py311
    {
        "name": "tagged",
        "description": "tags, variables and a secret reference",
        "tags": {"team": "ml", "stage": "prod", "empty": ""},
        "environment_variables": {"API_TOKEN": "${MY_TOKEN}", "Z_LAST": "z", "A_FIRST": ""},
        "python": {"pip": {"packages": ["requests>=2", "  pandas  ==  2.2.0 "]}},
    },
    {  # every section, written in another order than the models': the reader sorts them
        "inference_config": {
            "scoring_route": {"port": 5001, "path": "/score"},
            "liveness_route": {"port": 5001, "path": "/live"},
        },
        "inferencing_stack_version": "latest",
        "spark": {
            "precache_packages": False,
            "packages": [{"version": "1.0", "artifact": "lib", "group": "com.example"}],
            "repositories": ["https://repo.example/maven"],
        },
        "asset_id": "azureml://locations/x/environments/every/versions/1",
        "docker": {
            "arguments": ["--gpus", "all"],
            "shm_size": "8g",
            "enabled": True,
            "platform": {"architecture": "arm64", "os": "Linux"},
            "base_image_registry": {
                "password": "${REGISTRY_PASSWORD}",
                "username": "bot",
                "address": "registry.example",
            },
            "base_image": "registry.example/base:1",
        },
        "python": {
            "pip": {
                "pre": True,
                "find_links": ["https://links.example/wheels/"],
                "extra_index_urls": ["https://extra.example/simple"],
                "index_url": "https://pypi.example/simple",
                "constraints": ["numpy<3"],
                "packages": ["scipy==1.13.0"],
            },
            "conda": {
                "packages": ["python=3.11", "numpy>=1.26"],
                "channels": ["conda-forge", "https://carol:${CHAN_TOKEN}@conda.example/chan"],
            },
            "version": "3.11.7",
        },
        "name": "everything",
    },
    {"name": "inline", "docker": {"dockerfile": "\nFROM debian:12\nRUN echo hi   \n\n"}},
    {"name": "default-platform", "docker": {"base_image": "x:1", "platform": {}}},
    {"name": "managed", "python": {"user_managed": True, "interpreter_path": "/usr/bin/python3"}},
    {"name": "context", "docker": {"build_context": "ctx"}},  # a digest Kiln computes
    {"name": "gone", "python": {"pip": {"packages": ["six"]}}},
]
# Stored before the rules that now refuse them: read back (stored=True) and shown masked.
OLD_RECORDS = {
    "old-secret": {"environment_variables": {"DB_PASSWORD": "hunter2-plain", "HOME_DIR": "/x"}},
    "old-channel": {"python": {"conda": {"channels": ["https://carol:Sw0rdfish@conda.example/c"]}}},
}
SECRETS = ("hunter2-plain", "Sw0rdfish")
REFERENCES = [
    "plain",
    "plain:1",
    "plain@latest",
    "plain-copy",
    "bare",
    "tagged",
    "everything",
    "inline",
    "default-platform",
    "managed",
    "context",
    "gone:1",
    "old-secret",
    "old-channel",
    "Kiln-minimal-py311",
    "Kiln-pytorch-cpu-py311:1",
]


def register_samples(ws: Workspace, folder: Path) -> None:
    """Register every sample in ``ws`` (``folder`` holds the build context); archive some."""
    (folder / "ctx").mkdir(parents=True)
    (folder / "ctx" / "Dockerfile").write_text("FROM debian:12\n")
    for data in DEFINITIONS:
        catalog.register(ws, validate_definition(data), source_dir=folder)
    for name, stored in OLD_RECORDS.items():
        catalog.register(ws, validate_definition({"name": name}))
        with sqlite3.connect(ws.registry_file) as connection:  # as an older Kiln stored it
            connection.execute(
                "UPDATE environment_versions SET definition = ? WHERE name = ?",
                (json.dumps(stored, sort_keys=True), name),
            )
    catalog.set_archived(ws, "plain", "1", archived=True)
    catalog.set_archived(ws, "gone", None, archived=True)
