"""azureml-core's small section objects (``SparkPackage``, ``RSection``, ...): made empty or with arguments,
filled in attribute by attribute, then assigned to an environment, as Azure ML code does:

    env.spark.packages = [SparkPackage("com.example", "lib", "1.0")]

Nothing is checked until the assignment, which validates the whole value and names the field.
"""

from __future__ import annotations

from typing import Any


class _Section:
    """Attributes set freely; ``plain()`` gives them as definition data."""

    _fields: tuple[str, ...] = ()

    def plain(self) -> dict[str, Any]:
        """Set attributes only: one left at None takes the definition's default."""
        values = {field: getattr(self, field) for field in self._fields}
        return {field: plain(value) for field, value in values.items() if value is not None}

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({shown})"


class SparkPackage(_Section):
    """A Maven package of the spark section: group, artifact, version."""

    _fields = ("group", "artifact", "version")

    def __init__(
        self, group: str | None = None, artifact: str | None = None, version: str | None = None
    ) -> None:
        self.group, self.artifact, self.version = group, artifact, version


class RCranPackage(_Section):
    """A CRAN package of the R section: name, version, repository."""

    _fields = ("name", "version", "repository")

    def __init__(self) -> None:
        self.name: str | None = None
        self.version: str | None = None
        self.repository: str | None = None


class RGitHubPackage(_Section):
    """A GitHub package of the R section; ``auth_token`` only ever a ``${VAR}`` reference."""

    _fields = ("repository", "auth_token")

    def __init__(self) -> None:
        self.repository: str | None = None
        self.auth_token: str | None = None


class RSection(_Section):
    """Azure ML's R section (``env.r = RSection()``): stored and exported, never built."""

    _fields = (
        "r_version",
        "user_managed",
        "rscript_path",
        "snapshot_date",
        "cran_packages",
        "github_packages",
        "custom_url_packages",
        "bioconductor_packages",
    )

    def __init__(self) -> None:
        self.r_version: str | None = None
        self.user_managed = False
        self.rscript_path: str | None = None
        self.snapshot_date: str | None = None
        self.cran_packages: list[RCranPackage] | None = None
        self.github_packages: list[RGitHubPackage] | None = None
        self.custom_url_packages: list[str] | None = None
        self.bioconductor_packages: list[str] | None = None


def plain(value: Any) -> Any:
    """``value`` with section objects (also inside lists) turned into definition data."""
    if isinstance(value, _Section):
        return value.plain()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
