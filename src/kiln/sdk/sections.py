"""azureml-core's small section objects (``SparkPackage``, ...): made empty or with arguments,
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
        return {field: plain(getattr(self, field)) for field in self._fields}

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


def plain(value: Any) -> Any:
    """``value`` with section objects (also inside lists) turned into definition data."""
    if isinstance(value, _Section):
        return value.plain()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
