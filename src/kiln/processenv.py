"""A process's environment in a built environment: the definition's variables, then the
builder's activation. ``os`` only: Activation.environment and the exec card lane
(kiln.execcard) both make it here."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself would cost the exec card lane ~10 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def process_environment(
    base: Mapping[str, str],
    variables: Mapping[str, str],
    *,
    set_env: Mapping[str, str],
    path_prepend: Iterable[str],
    unset: Iterable[str],
) -> dict[str, str]:
    """``base`` with ``variables`` applied (``${VAR}`` references expanded from the environment
    as it goes, unknown ones empty), then ``set_env`` set, ``path_prepend`` put first on
    ``PATH`` and ``unset`` removed."""
    env = dict(base)
    for key, value in variables.items():
        if "${" in value:  # kiln.secrets imports re: only when there is something to expand
            from kiln.secrets import expand

            value = expand(value, env, default="")
        env[key] = value
    env.update(set_env)
    prepend = list(path_prepend)
    if prepend:
        env["PATH"] = os.pathsep.join([*prepend, env.get("PATH", "")])
    for name in unset:
        env.pop(name, None)
    return env
