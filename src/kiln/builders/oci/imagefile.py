"""The small files of an image build: the base image pinned inside the lock, and the record
(``image.json``) a materialization folder keeps of the image it stands for."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kiln.atomicfile import write_atomically
from kiln.builders.base import BuildError
from kiln.errors import KilnError
from kiln.podman import IMAGE_FACTS, read_image_facts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FACTS = IMAGE_FACTS
# Run inside an image: its installed distributions as JSON [[name, version], ...].
INSTALLED = (
    "import json; from importlib import metadata; "
    "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in metadata.distributions() if d.metadata['Name']})))"
)


def pin_base(lock_text: str, reference: str, digest: str) -> str:
    """``lock_text`` (pylock.toml) with the base image pinned in its [tool.kiln.image] table."""
    table = f'\n[tool.kiln.image]\nbase = {json.dumps(reference)}\nbase-digest = "{digest}"\n'
    return lock_text.rstrip("\n") + "\n" + table


def pinned_base(lock_text: str) -> tuple[str, str]:
    """(base reference, digest) that a lock pins; BuildError when it pins none."""
    try:
        data = tomllib.loads(lock_text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"the lock is not valid TOML ({exc}); rebuild with --refresh") from None
    image: object = data
    for key in ("tool", "kiln", "image"):
        image = image.get(key, {}) if isinstance(image, dict) else {}
    if not isinstance(image, dict) or not image.get("base") or not image.get("base-digest"):
        raise BuildError(
            "this lock pins no base image (it was made for a host build); rebuild with --refresh"
        )
    return str(image["base"]), str(image["base-digest"])


def write_facts(dest: Path, facts: dict[str, Any]) -> None:
    write_atomically(dest / FACTS, json.dumps(facts, indent=1, sort_keys=True))


def read_facts(dest: Path) -> dict[str, Any]:
    try:
        return read_image_facts(dest)
    except KilnError as exc:
        raise BuildError(str(exc)) from None
