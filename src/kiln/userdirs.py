"""The per-user folders Kiln defaults to (cache, data, config), as platformdirs names them.

Why not always platformdirs: importing it takes about 20 ms here (it loads its XDG, runtime
and tempfile machinery), and every command that uses a default folder, the warm ``kiln env
exec`` and ``show`` among them, paid that on each start. On Linux, in the common case (an
absolute ``$HOME``; the ``$XDG_*_HOME`` variable unset, empty or absolute), the answer is the
XDG base-directory rule, computed here; anything else (another OS, a relative ``$HOME`` or
``$XDG_*_HOME``, no ``$HOME``) asks platformdirs. tests/test_userdirs.py checks both agree.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs the exec card lane ~10 ms
if TYPE_CHECKING:
    from pathlib import Path

APP = "kiln"
# (the XDG variable, the folder under $HOME when it is not set) per kind of folder.
_XDG = {
    "cache": ("XDG_CACHE_HOME", ".cache"),
    "data": ("XDG_DATA_HOME", ".local/share"),
    "config": ("XDG_CONFIG_HOME", ".config"),
}


def xdg_folder(kind: str) -> str | None:
    """The XDG answer for ``kind`` as a string, or None where platformdirs should decide (the
    exec card lane uses it without pathlib, see kiln.execcard)."""
    if sys.platform != "linux" or "ANDROID_DATA" in os.environ:  # Android says "linux" too
        return None
    variable, under_home = _XDG[kind]
    value = os.environ.get(variable, "")
    if value.startswith("/"):
        return os.path.join(value, APP)  # noqa: PTH118 - a str; Path() of it is Path(value) / APP
    home = os.environ.get("HOME", "")
    if value or not home.startswith("/"):
        return None  # a relative $XDG_*_HOME or $HOME: platformdirs' own rules
    # As os.path.expanduser joins them: $HOME without its trailing slashes ("//" is "/").
    return f"{home.rstrip('/')}/{under_home}/{APP}"


def _xdg(kind: str) -> Path | None:
    from pathlib import Path

    found = xdg_folder(kind)
    return None if found is None else Path(found)


def cache_path() -> Path:
    """platformdirs.user_cache_path("kiln")."""
    found = _xdg("cache")
    if found is not None:
        return found
    import platformdirs

    return platformdirs.user_cache_path(APP)


def data_path() -> Path:
    """platformdirs.user_data_path("kiln")."""
    found = _xdg("data")
    if found is not None:
        return found
    import platformdirs

    return platformdirs.user_data_path(APP)


def config_path() -> Path:
    """platformdirs.user_config_path("kiln")."""
    found = _xdg("config")
    if found is not None:
        return found
    import platformdirs

    return platformdirs.user_config_path(APP)
