"""A workspace: a ``.kiln/`` folder holding the registry (embedded SQLite, or a PostgreSQL URL
in its config) and the artifact store.

Discovery order: an explicit path (``--workspace``), ``KILN_WORKSPACE``, a ``.kiln/`` found
upward from the current directory (as git finds ``.git``), then a per-user default. Under
pytest the per-user default raises, so no test can write to a real home.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln import workspacefolder
from kiln.errors import WorkspaceError
from kiln.workspacefolder import CONFIG_FILE, REGISTRY_FILE, WORKSPACE_DIR, is_server_url

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from kiln.artifacts import ArtifactStore


_SETTING_VARIABLES = {
    "image_registry": "KILN_IMAGE_REGISTRY",
    "base_image": "KILN_BASE_IMAGE",
    "python_downloads": "KILN_PYTHON_DOWNLOADS",
    "python_mirror": "KILN_PYTHON_MIRROR",
}
SHARED_SETTINGS = tuple(_SETTING_VARIABLES)


def _downloads_choice(value: str | None) -> str | None:
    if value not in (None, "never", "automatic"):
        raise WorkspaceError(f"python_downloads {value!r} is not a choice; use never or automatic")
    return value


def _expand(url: str) -> str:
    """Expand ``${VAR}`` in a database URL: passwords stay out of the config file."""
    from kiln.secrets import expand, references

    for name in references(url):
        if name not in os.environ:
            raise WorkspaceError(
                f"the database URL uses ${{{name}}}, which is not set; export {name}"
            )
    return expand(url, os.environ)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _literal_password(url: str) -> bool:
    """True when the URL's password is anything but one ``${VAR}`` reference."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        raise WorkspaceError(
            "the database URL is not valid; use postgresql+psycopg://USER@HOST/DB"
        ) from None
    from kiln.secrets import is_reference

    return password is not None and not is_reference(str(password))


def user_default_path() -> Path:
    if os.environ.get("PYTEST_VERSION") or os.environ.get("KILN_NO_DEFAULT_WORKSPACE"):
        raise WorkspaceError(
            "refusing the per-user default workspace under tests; pass a workspace explicitly"
        )
    from kiln.userdirs import data_path

    return data_path() / "workspace"


def find_upward(start: Path) -> Path | None:
    found = workspacefolder.find_upward(str(start))
    return None if found is None else Path(found)


class Workspace:
    """A workspace folder. ``Workspace(path)`` opens an existing one (the folder that holds
    ``.kiln/``, or ``.kiln/`` itself); ``Workspace.create(path)`` makes one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.server_url: str | None = None
        if is_server_url(os.fspath(path)):
            self._open_server(os.fspath(path))
            return
        folder = Path(path).expanduser().absolute()
        if folder.name == WORKSPACE_DIR and (folder / CONFIG_FILE).is_file():
            folder = folder.parent
        self.path = folder
        self.root = folder / WORKSPACE_DIR
        config_path = self.root / CONFIG_FILE
        if not config_path.is_file():
            raise WorkspaceError(
                f"no Kiln workspace at {folder}; create one with `kiln init {folder}`"
            )
        try:
            self.config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkspaceError(
                f"{config_path} is unreadable ({exc}); fix or recreate it"
            ) from None

    def _open_server(self, url: str) -> None:
        """A workspace served by ``kiln server``: the commands that support it talk to its API
        (kiln.remoteenvs); the local registry and artifact store do not exist."""
        from kiln.credentials import normal_url

        self.server_url = normal_url(url)
        self.path = self.root = Path(self.server_url)  # named in messages only
        self.config = {"format": 1, "database_url": None}

    def _local_only(self, what: str) -> None:
        if self.server_url is not None:
            raise WorkspaceError(
                f"this command does not work against a Kiln server yet ({self.server_url} "
                f"has no local {what}); run it on the server host or with a local workspace"
            )

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        database_url: str | None = None,
        cache_dir: str | None = None,
        image_registry: str | None = None,
        base_image: str | None = None,
        python_downloads: str | None = None,
        python_mirror: str | None = None,
    ) -> Workspace:
        """Create a workspace at ``path``; on an existing one, the shared settings given are
        changed and nothing else. ``cache_dir`` moves this workspace's build cache (default:
        the per-user cache)."""
        if is_server_url(os.fspath(path)):
            raise WorkspaceError(
                f"{os.fspath(path)} is a Kiln server: its workspace is made on the server host "
                "(`kiln server --workspace PATH`); log in with `kiln login URL`"
            )
        folder = Path(path).expanduser().absolute()
        root = folder / WORKSPACE_DIR
        config_path = root / CONFIG_FILE
        from kiln.secrets import url_has_literal_credentials

        if python_mirror and url_has_literal_credentials(python_mirror):
            raise WorkspaceError(
                "the Python mirror URL holds a plain-text password; serve the mirror without one "
                "or give it to uv through its own netrc"
            )
        settings = {
            "image_registry": image_registry,
            "base_image": base_image,
            "python_downloads": _downloads_choice(python_downloads),
            "python_mirror": python_mirror,
        }
        settings = {key: value for key, value in settings.items() if value}
        if config_path.is_file():
            existing = cls(folder)
            if database_url and existing.config.get("database_url") != database_url:
                raise WorkspaceError(f"{folder} already holds a workspace with another database")
            existing.engine  # noqa: B018 - opening it brings the schema up to date
            if any(existing.config.get(k) != v for k, v in settings.items()):
                from kiln.atomicfile import write_atomically

                existing.config.update(settings)
                text = json.dumps(existing.config, indent=2)
                write_atomically(config_path, text, durable=True)
            return existing
        if database_url and _literal_password(database_url):
            raise WorkspaceError(
                "the database URL holds a plain-text password; write it as "
                "postgresql+psycopg://USER:${KILN_DB_PASSWORD}@HOST/DB and export the variable"
            )
        made_root = not root.exists()
        # Readable by the owner only: the registry holds definitions, locks and run records.
        folder.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700, exist_ok=True)
        (root / "artifacts").mkdir(mode=0o700, exist_ok=True)
        if not database_url:  # SQLite gives its WAL and journal files the database's mode
            os.close(os.open(root / REGISTRY_FILE, os.O_CREAT | os.O_WRONLY, 0o600))
        config: dict[str, Any] = {"format": 1, "database_url": database_url, **settings}
        if cache_dir:
            config["cache_dir"] = str(Path(cache_dir).expanduser().absolute())
        from kiln.atomicfile import write_atomically

        write_atomically(config_path, json.dumps(config, indent=2), durable=True)
        try:
            workspace = cls(folder)
            workspace.engine  # noqa: B018 - create the schema now, not on first use
        except BaseException:
            # A database that cannot be reached must not leave a workspace that blocks a retry.
            if made_root:
                import shutil

                shutil.rmtree(root, ignore_errors=True)
            else:
                config_path.unlink(missing_ok=True)
            raise
        return workspace

    @classmethod
    def discover(
        cls,
        explicit: str | os.PathLike[str] | None = None,
        *,
        cwd: Path | None = None,
        create: bool = True,
    ) -> Workspace:
        """The workspace to use (see the module's discovery order). ``create=False`` is for
        reading: with nothing found and no per-user default yet, it raises instead of making
        the default, so a read never leaves a workspace behind."""
        if explicit:
            return cls(explicit)
        if os.environ.get("KILN_WORKSPACE"):
            return cls(os.environ["KILN_WORKSPACE"])
        found = find_upward((cwd or Path.cwd()).absolute())
        if found is not None:
            return cls(found)
        default = user_default_path()
        if (default / WORKSPACE_DIR / CONFIG_FILE).is_file():
            return cls(default)
        if not create:
            raise WorkspaceError(
                "no Kiln workspace here or above, and no per-user default yet; create one "
                "with `kiln init`, or pass --workspace PATH"
            )
        from kiln.private import private_folder

        return cls.create(private_folder(default))  # Kiln's own folder, not a project's

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """As in Azure ML: the workspace this directory belongs to (see ``discover``)."""
        return cls.discover(path)

    @property
    def database_url(self) -> str:
        configured = self.config.get("database_url")
        if configured:
            return _expand(str(configured))
        return f"sqlite:///{self.root / REGISTRY_FILE}"

    @property
    def cache_root(self) -> Path:
        """Where this workspace's builds are cached on this machine: ``KILN_CACHE_DIR``, the
        workspace's ``cache_dir`` setting, or the per-user cache folder."""
        from kiln.cache import default_root

        configured = self.config.get("cache_dir")
        return default_root(str(configured) if configured else None)

    def setting(self, key: str) -> str | None:
        """A shared setting (``image_registry``, ``base_image``): the environment variable
        that overrides it, else the workspace's own, or its server's (asked once)."""
        chosen = os.environ.get(_SETTING_VARIABLES[key])
        if not chosen and self.server_url is not None:
            if "_shared" not in self.__dict__:
                from kiln.credentials import login_for
                from kiln.httpclient import ServerClient

                api = ServerClient(self.server_url, login_for(self.server_url).token)
                self.__dict__["_shared"] = api.request("GET", "/workspace")
            chosen = self.__dict__["_shared"].get(key)
        chosen = chosen or self.config.get(key)
        return str(chosen) if chosen else None

    @property
    def image_registry(self) -> str | None:
        """The registry that caches this workspace's images: ``KILN_IMAGE_REGISTRY``, or the
        workspace's ``image_registry`` setting; None keeps images in the engine store only."""
        return self.setting("image_registry")

    @property
    def is_embedded(self) -> bool:
        """True for the embedded SQLite registry inside the workspace folder."""
        return not self.config.get("database_url") and self.server_url is None

    @property
    def registry_file(self) -> Path:
        return self.root / REGISTRY_FILE

    @property
    def database_display(self) -> str:
        """The database URL with any password hidden: safe to print."""
        if self.server_url is not None:
            return self.server_url
        return (
            _redact(self.database_url)
            if self.config.get("database_url")
            else str(self.root / REGISTRY_FILE)
        )

    @cached_property
    def engine(self) -> Engine:
        self._local_only("registry")
        from kiln.registry.engine import open_engine

        return open_engine(self.database_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        self._local_only("artifact store")
        from kiln.artifacts import ArtifactStore

        return ArtifactStore(self.root / "artifacts")

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r}, registry={self.database_display!r})"
