"""A small local conda channel, made by hand and indexed by rattler, for the conda builder tests.

Conda channels are not reachable from the test machines, so the tests publish their own noarch
packages: each is a ``.tar.bz2`` holding ``info/index.json``, ``info/paths.json``,
``info/files`` and a few payload files (``share/NAME/data.txt`` and a shell script
``bin/NAME-hello``). ``rattler.index.index_fs`` turns the folder into a channel
(``noarch/repodata.json``) that the builder reads as a local path.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"  # conda-build's prefix placeholder


def _add(archive: tarfile.TarFile, path: str, content: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(content)
    info.mode = mode
    info.mtime = 1_700_000_000  # fixed: the same package twice is the same bytes
    archive.addfile(info, io.BytesIO(content))


def payload(name: str, version: str) -> dict[str, tuple[bytes, int]]:
    """The files a test package installs: {path: (content, mode)}."""
    script = f'#!/bin/sh\necho "hello from {name} {version}"\n'
    return {
        f"share/{name}/data.txt": (f"{name} {version}\n".encode(), 0o644),
        f"bin/{name}-hello": (script.encode(), 0o755),
    }


def make_package(
    subdir_folder: Path,
    name: str,
    version: str,
    depends: Sequence[str] = (),
    build_number: int = 0,
    noarch: str = "generic",
    embeds_prefix: bool = False,
) -> Path:
    """A noarch conda package ``NAME-VERSION-BUILD.tar.bz2`` in ``subdir_folder``. Its files
    are laid out as a generic package's, whatever ``noarch`` says. ``embeds_prefix`` adds
    ``etc/NAME/prefix.txt``, whose placeholder conda replaces by the prefix at install."""
    build = f"h{build_number}_{build_number}"
    files = payload(name, version)
    if embeds_prefix:
        files[f"etc/{name}/prefix.txt"] = (f"prefix={PLACEHOLDER}\n".encode(), 0o644)
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "subdir": "noarch",
        "noarch": noarch,
        "license": "MIT",
        "timestamp": 1_700_000_000_000,
    }
    entries: list[dict[str, Any]] = []
    for path, (content, _mode) in files.items():
        entry = {"_path": path, "path_type": "hardlink"}
        if path.startswith("etc/"):
            entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
        digest = hashlib.sha256(content).hexdigest()
        entries.append({**entry, "sha256": digest, "size_in_bytes": len(content)})
    paths = {"paths": entries, "paths_version": 1}
    subdir_folder.mkdir(parents=True, exist_ok=True)
    target = subdir_folder / f"{name}-{version}-{build}.tar.bz2"
    with tarfile.open(target, "w:bz2") as archive:
        _add(archive, "info/index.json", json.dumps(index, indent=1).encode())
        _add(archive, "info/paths.json", json.dumps(paths, indent=1).encode())
        _add(archive, "info/files", "".join(f"{p}\n" for p in files).encode())
        for path, (content, mode) in files.items():
            _add(archive, path, content, mode)
    return target


@dataclass
class CondaChannel:
    """A channel folder: ``publish`` packages into it, then ``index`` it."""

    root: Path

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def publish(
        self,
        name: str,
        version: str,
        depends: Sequence[str] = (),
        *,
        noarch: str = "generic",
        embeds_prefix: bool = False,
        index: bool = True,
    ) -> Path:
        package = make_package(
            self.root / "noarch", name, version, depends, noarch=noarch, embeds_prefix=embeds_prefix
        )
        if index:
            self.index()
        return package

    def index(self) -> None:
        from rattler.index import index_fs

        asyncio.run(index_fs(self.root, write_zst=False, write_shards=False, force=True))


def hello_channel(root: Path) -> CondaChannel:
    """hello-tool 1.0 (needs hello-lib), hello-lib 1.0 and 2.0, hello-data 0.1."""
    channel = CondaChannel(root)
    channel.publish("hello-lib", "1.0", index=False)
    channel.publish("hello-lib", "2.0", index=False)
    channel.publish("hello-tool", "1.0", ["hello-lib >=1.0"], index=False)
    channel.publish("hello-data", "0.1", index=False)
    channel.index()
    return channel
