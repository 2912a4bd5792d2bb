"""The cheap reuse check of a virtualenv, standard library only (the warm ``exec`` path uses it
too): the interpreter, ``pyvenv.cfg`` and the base Python folder it points at still exist."""

from __future__ import annotations

from pathlib import Path


def check_venv(dest: Path) -> str | None:
    python = dest / "bin" / "python"
    if not python.exists():  # follows the symlink: the base interpreter must exist too
        return f"{python} or the interpreter it links to is missing"
    try:
        config = (dest / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return f"{dest / 'pyvenv.cfg'} is missing, so bin/python would run without the packages"
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and not Path(value.strip()).is_dir():
            return f"its base Python folder {value.strip()} (pyvenv.cfg home) is missing"
    return None
