"""The environment folder cut into layers by distribution, so that images which share a
distribution share its layer's blob, and a change of one package changes (and pushes) only
that package's layer and the small one of files no distribution owns (interpreter links,
pyvenv.cfg, the lock).

A distribution owns the files its ``.dist-info/RECORD`` lists and the bytecode compiled from
its modules (``__pycache__/NAME.cpython-XY.pyc`` beside ``NAME.py``). With more distributions
than ``MAX_LAYERS`` the smallest share one layer, so an image stays well under the engines'
layer limits (overlay stacks about 128)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kiln.builders.oci.layer import SKIPPED

MAX_LAYERS = 48


@dataclass
class Part:
    name: str  # "numpy==2.4.6", "(environment)" or "(small distributions)"
    members: list[PurePosixPath] = field(default_factory=list)
    size: int = 0


def _records(root: Path) -> dict[PurePosixPath, str]:
    """Each file a RECORD lists (relative to ``root``) -> its distribution, as NAME==VERSION."""
    owners: dict[PurePosixPath, str] = {}
    for record in sorted(root.glob("lib/python*/site-packages/*.dist-info/RECORD")):
        site = record.parent.parent
        name, _, version = record.parent.name.removesuffix(".dist-info").rpartition("-")
        with record.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                if not row or not row[0]:
                    continue
                path = (site / row[0]).resolve(strict=False)
                try:
                    owners[PurePosixPath(path.relative_to(root.resolve()).as_posix())] = (
                        f"{name}=={version}"
                    )
                except ValueError:
                    continue  # a RECORD line pointing outside the environment
    return owners


def _owner(path: PurePosixPath, owners: dict[PurePosixPath, str]) -> str | None:
    if path in owners:
        return owners[path]
    if path.parent.name == "__pycache__" and path.suffix == ".pyc":
        module = path.name.split(".", 1)[0] + ".py"
        return owners.get(path.parent.parent / module)
    return None


def split(root: Path) -> list[Part]:
    """The files and links under ``root`` as layer parts: the environment's own first, then
    distributions by name (the smallest ones together when there are too many)."""
    owners = _records(root)
    parts: dict[str, Part] = {}
    own = Part("(environment)")
    for path in sorted(root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if relative.name in SKIPPED and len(relative.parts) == 1:
            continue
        name = _owner(relative, owners)
        part = own if name is None else parts.setdefault(name, Part(name))
        part.members.append(relative)
        part.size += path.lstat().st_size
    distributions = sorted(parts.values(), key=lambda p: p.name)
    if len(distributions) > MAX_LAYERS - 2:
        by_size = sorted(distributions, key=lambda p: (-p.size, p.name))
        keep, small = by_size[: MAX_LAYERS - 2], by_size[MAX_LAYERS - 2 :]
        shared = Part("(small distributions)")
        for part in sorted(small, key=lambda p: p.name):
            shared.members += part.members
            shared.size += part.size
        distributions = [*sorted(keep, key=lambda p: p.name), shared]
    return [own, *distributions]
