"""OCI image layouts (a folder with ``oci-layout``, ``index.json`` and ``blobs/sha256/``):
reading a base image from one, and writing a new image that is the base plus layers, with a
config whose every field is fixed by its inputs, so the same inputs give the same digest."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.builders.oci.layer import Layer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
CREATED = "1980-01-01T00:00:00Z"  # layer.EPOCH, as the time the image config states


@dataclass(frozen=True)
class Image:
    """One image of a layout: its manifest digest, manifest and config as parsed JSON."""

    digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def size(self) -> int:
        """Bytes of its compressed layers (what a registry stores and a pull transfers)."""
        return sum(int(layer["size"]) for layer in self.manifest.get("layers", []))


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_name(path.name + ".partial")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return digest, len(data)


def read_image(layout: Path, name: str | None = None) -> Image:
    """The image tagged ``name`` in ``layout`` (the only one when ``name`` is None)."""
    index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    entries = index.get("manifests", [])
    if name is not None:
        entries = [m for m in entries if m.get("annotations", {}).get(REF_ANNOTATION) == name]
    if len(entries) != 1:
        raise ValueError(f"{layout} has {len(entries)} images named {name!r}, not one")
    digest = entries[0]["digest"]
    manifest = json.loads(blob_path(layout, digest).read_bytes())
    config = json.loads(blob_path(layout, manifest["config"]["digest"]).read_bytes())
    return Image(digest, manifest, config)


def _path_first(env: Sequence[str], folder: str) -> list[str]:
    """``env`` (NAME=value lines) with ``folder`` first on PATH."""
    path = next((line.split("=", 1)[1] for line in env if line.startswith("PATH=")), None)
    path = path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    kept = [line for line in env if not line.startswith("PATH=")]
    return [f"PATH={folder}:{path}", *kept]


def derive_config(
    base: Image,
    layers: Sequence[Layer],
    *,
    path_first: str | None,
    env: Mapping[str, str],
    labels: Mapping[str, str],
    history: Sequence[str],
) -> dict[str, Any]:
    """The base's config plus ``layers``: ``path_first`` first on PATH, ``env`` set (sorted),
    ``labels`` added, one ``history`` line per layer, and every time stamp fixed."""
    config: dict[str, Any] = json.loads(json.dumps(base.config))  # a deep copy
    runtime = config.setdefault("config", {})
    lines = [line for line in runtime.get("Env") or [] if line.split("=", 1)[0] not in env]
    if path_first:
        lines = _path_first(lines, path_first)
    runtime["Env"] = [*lines, *(f"{key}={env[key]}" for key in sorted(env))]
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **dict(sorted(labels.items()))}
    config["created"] = CREATED
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"]["diff_ids"] = [
        *config["rootfs"].get("diff_ids", []),
        *(x.diff_id for x in layers),
    ]
    entries = [{"created": CREATED, "created_by": line, "comment": "kiln"} for line in history]
    config["history"] = [*config.get("history", []), *entries]
    return config


def write_image(
    layout: Path,
    base: Image,
    layers: Sequence[Layer],
    config: dict[str, Any],
    *,
    name: str,
) -> Image:
    """Write the image ``base`` + ``layers`` with ``config`` into ``layout`` (whose blobs must
    already hold the base's blobs and the layers' blobs), tagged ``name``."""
    config_digest, config_size = write_blob(layout, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            *base.manifest.get("layers", []),
            *({"mediaType": LAYER_GZIP, "digest": x.digest, "size": x.size} for x in layers),
        ],
    }
    digest, size = write_blob(layout, _canonical(manifest))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": digest,
                "size": size,
                "annotations": {REF_ANNOTATION: name},
            }
        ],
    }
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    (layout / "index.json").write_bytes(_canonical(index))
    return Image(digest, manifest, config)


def link_blobs(source: Path, dest: Path, image: Image) -> None:
    """Hard-link (or copy) ``image``'s manifest, config and layer blobs from ``source`` into
    the layout ``dest``."""
    import shutil

    digests = [image.digest, image.manifest["config"]["digest"]]
    digests += [layer["digest"] for layer in image.manifest.get("layers", [])]
    for digest in digests:
        target = blob_path(dest, digest)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blob_path(source, digest), target)
        except OSError:
            shutil.copyfile(blob_path(source, digest), target)
