"""Which package source URLs a definition may name: packages and their hashes travel over
https, so a plain ``http://`` index, find-links page or conda channel is refused with the fix,
as ``--trusted-host`` is. Loopback hosts stay allowed: nothing crosses a network there (the
test suite serves its indexes on 127.0.0.1)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from kiln.secrets import strip_url_credentials

HTTPS_FIX = "serve the index over https"
_LOOPBACK_NAMES = {"localhost"}


def plain_http_problem(url: str) -> str | None:
    """Why ``url`` must not be used (plain http to a host other than this machine), or None."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:  # an unbalanced '[': other checks name what is wrong with it
        return None
    if parts.scheme.lower() != "http" or is_loopback(host):
        return None
    return (
        f"{strip_url_credentials(url.strip())} is plain http, so packages and their hashes would "
        f"travel unencrypted and could be changed on the way; {HTTPS_FIX} "
        "(http is accepted for localhost, 127.0.0.0/8 and [::1] only)"
    )


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: where plain http crosses no network."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
