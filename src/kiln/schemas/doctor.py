"""``kiln doctor``: one check of what building and running images needs."""

from __future__ import annotations

from kiln.schemas.base import Public


class DoctorCheck(Public):
    """A check: ``ok``, what was found (``detail``) and, when it failed, what to do (``fix``)."""

    name: str  # podman, skopeo, buildah, podman info, container ulimits, uv, workspace, ...
    ok: bool
    detail: str
    fix: str | None
