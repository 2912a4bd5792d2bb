"""How to run a command in a built environment, as plain data: standard library only.

A builder says what its build needs (``Builder.activation``); the build records it (in the
cache marker and this machine's warm-path pointer), and whoever starts a process applies it:
the full path, the warm path of ``kiln env exec`` (fastexec, which knows no builder) and
``kiln env activate`` (as shell code). A virtualenv needs its ``bin`` first on ``PATH`` and
``VIRTUAL_ENV``; an image would need an engine command (``podman run ... IMAGE``) as ``argv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.processenv import process_environment


@dataclass(frozen=True)
class Activation:
    """What running in a materialization takes, applied in this order to a base environment:
    ``set_env`` set, ``path_prepend`` put first on ``PATH``, ``unset`` removed. ``argv`` goes
    before the command (empty for an interpreter on this machine). ``requires``: files whose
    loss makes the build unusable, checked (exist) before a warm reuse without starting a
    process."""

    argv: tuple[str, ...] = ()
    set_env: dict[str, str] = field(default_factory=dict)
    path_prepend: tuple[str, ...] = ()
    unset: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()

    def command(self, argv: Sequence[str]) -> list[str]:
        """The full command line for ``argv`` run in the materialization."""
        return [*self.argv, *argv]

    def environment(self, variables: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the definition's ``variables`` applied (``${VAR}`` references expanded
        from the environment as it goes, unknown ones empty), then this activation."""
        return process_environment(
            base, variables, set_env=self.set_env, path_prepend=self.path_prepend, unset=self.unset
        )

    def missing(self) -> str | None:
        """The first required file that is gone, or None."""
        return next((path for path in self.requires if not Path(path).exists()), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "set_env": dict(self.set_env),
            "path_prepend": list(self.path_prepend),
            "unset": list(self.unset),
            "requires": list(self.requires),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Activation:
        """The recorded form back; raises KeyError, TypeError or ValueError when malformed."""

        def texts(key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in data[key])

        set_env = data["set_env"]
        if not isinstance(set_env, dict):
            raise TypeError("set_env is not a mapping")
        return cls(
            argv=texts("argv"),
            set_env={str(k): str(v) for k, v in set_env.items()},
            path_prepend=texts("path_prepend"),
            unset=texts("unset"),
            requires=texts("requires"),
        )
