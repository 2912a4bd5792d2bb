"""Build leases kept by a team server (``/api/v1/builds/{hash}/lease``): the LeaseBook of a
workspace served by ``kiln server``, so two clients building one materialization at once build
it once. Each call is one request; the server's clock decides expiry for every client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.registry.lease_queries import Holder, LeaseKey
    from kiln.workspace import Workspace


class ServerLeases:
    def __init__(self, workspace: Workspace) -> None:
        from kiln.remoteenvs import client

        self.api = client(workspace)

    @staticmethod
    def _where(key: LeaseKey) -> tuple[str, dict[str, str]]:
        return f"/builds/{key.build_hash}/lease", {"platform": key.platform, "builder": key.builder}

    def current(self, key: LeaseKey) -> dict[str, Any] | None:
        path, params = self._where(key)
        found: dict[str, Any] | None = self.api.request("GET", path, params=params)
        return found

    def insert(self, key: LeaseKey, holder: Holder, seconds: float) -> bool:
        return self._take(key, holder, None, seconds)

    def take_over(self, key: LeaseKey, holder: Holder, previous: str, seconds: float) -> bool:
        return self._take(key, holder, previous, seconds)

    def _take(self, key: LeaseKey, holder: Holder, previous: str | None, seconds: float) -> bool:
        path, params = self._where(key)
        body = {**params, **holder._asdict(), "seconds": seconds, "previous": previous}
        return bool(self.api.request("POST", path, json=body)["won"])

    def renew(self, key: LeaseKey, holder: str, seconds: float) -> bool:
        path, params = self._where(key)
        body = {**params, "holder": holder, "seconds": seconds}
        return bool(self.api.request("POST", f"{path}/renew", json=body)["won"])

    def release(self, key: LeaseKey, holder: str) -> None:
        path, params = self._where(key)
        self.api.send("DELETE", path, params={**params, "holder": holder})
