"""Channels for the conda builder: what rattler reads, and the credentials it sends.

A channel that needs a password is written ``https://USER:${VAR}@host/channel`` (a lone
``${TOKEN}@`` is a user name without a password, as for uv). Rattler is given the URL without
its ``user:password@``, so every package URL it derives (the lock's ``url`` and ``channel``,
``conda-meta``, the repodata cache's file names) has no credentials, and the lock installs on
any machine that sets the variables. The credentials go in a Basic ``Authorization`` header,
added by a client middleware to requests under that channel only (by host and path: the
middleware is not told the port). Their values come from the build's secrets, read from the
environment when the build starts (``kiln.buildinputs.secrets_for``), and never leave memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kiln.builders.base import BuildError
from kiln.secrets import (
    basic_authorization,
    credential_references,
    references,
    strip_url_credentials,
    url_with_reference,
)

if TYPE_CHECKING:
    from rattler.networking import Client

_REFUSED = re.compile(r"\b(401|403)\b(?: [A-Z][a-z]+)?")  # "401 Unauthorized", "403 Forbidden"


@dataclass(frozen=True)
class Channel:
    written: str  # as the definition has it: shown in messages (credentials only as ${VAR})
    source: str  # what rattler reads: a name, a file:// URL, or a URL without credentials
    authorization: str | None = None  # the header value for requests under ``source``

    @property
    def variables(self) -> list[str]:
        return references(self.written)


def channels(written: list[str], secrets: Mapping[str, str]) -> list[Channel]:
    """Each channel as rattler reads it, in priority order; references expanded from
    ``secrets`` into its header."""
    found = []
    for channel in written:
        if channel.startswith(("/", "~")):
            found.append(Channel(channel, Path(channel).expanduser().as_uri()))
        elif channel.startswith("."):
            raise BuildError(
                f"`python.conda.channels`: {channel!r} is a relative path; write the absolute "
                "path or a file:// URL of the local channel"
            )
        else:
            found.append(_with_credentials(channel, secrets))
    return found


def _with_credentials(channel: str, secrets: Mapping[str, str]) -> Channel:
    outside = set(references(channel)) - set(credential_references(channel))
    if outside:
        # Only user:password@ is kept out of the URLs rattler derives (and so out of the lock).
        raise BuildError(
            f"`python.conda.channels`: {channel!r} uses ${{{sorted(outside)[0]}}} outside its "
            "user:password part, where it would be written into the lock; put credentials "
            "before the host: https://USER:${VAR}@HOST/CHANNEL"
        )
    for name in credential_references(channel):
        if name not in secrets:
            raise BuildError(
                f"the conda channel {channel} uses ${{{name}}}, which is not set; export {name}"
            )
    header = basic_authorization(channel, secrets)
    return Channel(channel, strip_url_credentials(channel), header)


def client(found: list[Channel]) -> Client | None:
    """A rattler client that authenticates requests under the channels that have credentials
    (rattler's default middlewares kept); None, rattler's own default, when none has."""
    scopes = [
        (urlsplit(c.source).hostname or "", urlsplit(c.source).path.rstrip("/") + "/", header)
        for c in found
        if (header := c.authorization) is not None
    ]
    if not scopes:
        return None
    from rattler.networking import (
        AddHeadersMiddleware,
        AuthenticationMiddleware,
        Client,
        GCSMiddleware,
        OciMiddleware,
        RetryMiddleware,
        S3Middleware,
    )

    def headers(host: str, path: str) -> dict[str, str] | None:
        for scope_host, prefix, header in scopes:
            if host == scope_host and path.startswith(prefix):
                return {"Authorization": header}
        return None

    return Client(
        [
            RetryMiddleware(),
            AddHeadersMiddleware(headers),
            AuthenticationMiddleware(),
            OciMiddleware(),
            GCSMiddleware(),
            S3Middleware(),
        ]
    )


def refused(error: str, found: list[Channel]) -> str | None:
    """One line for a 401 or 403 from a channel, naming it and its variables (never their
    values); None for any other error. ``error`` names the URL that was refused, if any."""
    status = _REFUSED.search(error)
    if status is None:
        return None
    named = [c for c in found if c.source.rstrip("/") + "/" in error] or found
    channel = next((c for c in named if c.authorization), named[0])
    if channel.authorization is None:
        return (
            f"the conda channel {channel.written} needs credentials ({status.group(0)}); write "
            f"{url_with_reference(channel.written, 'CONDA_PASSWORD')} and export CONDA_PASSWORD"
        )
    names = ", ".join(channel.variables)
    return (
        f"the conda channel {channel.written} refused the credentials read from {names} "
        f"({status.group(0)}); check their values"
    )
