"""Where ``kiln login`` keeps a server's URL and token: ``login.json`` in the user's config
folder (``KILN_CONFIG_DIR`` moves it), written atomically as 0600 in a 0700 folder.
``KILN_TOKEN`` overrides the stored token. Under tests the per-user folder raises, so no test
writes a real home."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from kiln.errors import UsageError, WorkspaceError

LOGIN_FILE = "login.json"
TOKEN_VARIABLE = "KILN_TOKEN"


class Login(NamedTuple):
    url: str
    token: str | None


def config_dir() -> Path:
    if os.environ.get("KILN_CONFIG_DIR"):
        return Path(os.environ["KILN_CONFIG_DIR"])
    if os.environ.get("PYTEST_VERSION"):
        raise WorkspaceError("refusing the per-user config folder under tests; set KILN_CONFIG_DIR")
    from kiln.userdirs import config_path

    return config_path()


def normal_url(url: str) -> str:
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"server URL {url!r} must look like http://HOST:PORT")
    return url


def save_login(url: str, token: str) -> Path:
    from kiln.atomicfile import write_atomically

    path = config_dir() / LOGIN_FILE
    write_atomically(path, json.dumps({"url": url, "token": token}), durable=True)
    return path


def stored_login() -> Login | None:
    path = config_dir() / LOGIN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path} is unreadable ({exc}); run `kiln login URL` again") from None
    return Login(str(data.get("url", "")), data.get("token"))


def login_for(explicit_url: str | None) -> Login:
    """The server to talk to (``--server``, an http ``KILN_WORKSPACE``, or the stored login)
    and the token (``KILN_TOKEN``, or the stored one for that URL)."""
    stored = stored_login()
    workspace = os.environ.get("KILN_WORKSPACE", "")
    url = explicit_url or (workspace if workspace.startswith(("http://", "https://")) else None)
    url = url or (stored.url if stored else None)
    if not url:
        raise UsageError("no Kiln server given; pass --server URL or run `kiln login URL` first")
    url = normal_url(url)
    token = os.environ.get(TOKEN_VARIABLE) or (
        stored.token if stored and normal_url(stored.url) == url else None
    )
    return Login(url, token)
