"""One place that decides what is secret and how it is hidden.

Used by every error message (KilnError), crash logs, ``show``, ``diff`` and ``lint``. Kiln keeps
secrets out of definitions altogether (only ``${VAR}`` references are accepted where a password
goes); this module is the second line: whatever text leaves Kiln passes through ``redact``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|CREDENTIAL|PRIVATE_?KEY)", re.I
)
# ``${NAME}``: a value read from the environment where it is used; the only form in which a
# secret may appear in a definition, a config file, a lock or a log.
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# scheme://userinfo@ where userinfo is not entirely ${VAR} references
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
REDACTED = "<redacted>"
# A team server's personal access token (kiln.accounts makes them): hidden wherever it appears.
TOKEN_PREFIX = "kiln_"
_TOKEN = re.compile(r"\bkiln_[A-Za-z0-9_\-]{40,}")


def looks_secret(name: str) -> bool:
    """True for a variable name such as API_TOKEN or DB_PASSWORD."""
    return bool(SECRET_NAME.search(name))


def is_reference(value: str) -> bool:
    """True when ``value`` is exactly one ``${NAME}`` reference."""
    return REFERENCE.fullmatch(value) is not None


def references(text: str) -> list[str]:
    """The names of the ``${NAME}`` references in ``text``."""
    return REFERENCE.findall(text)


def expand(text: str, values: Mapping[str, str], *, default: str | None = None) -> str:
    """``text`` with each ``${NAME}`` replaced by ``values[NAME]``; a name without a value is
    replaced by ``default``, or left as it is when ``default`` is None."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        return match.group(0) if default is None else default

    return REFERENCE.sub(value, text)


def plain_secret_variable(name: str, value: str) -> str | None:
    """Why ``name=value`` may not be stored (a secret-looking name with a written-out value),
    with the ``${NAME}`` fix and never the value; None when it may. One rule for environment
    definitions and deployments alike."""
    if not value or not looks_secret(name) or is_reference(value):
        return None
    return (
        f"{name} looks like a secret stored in plain text; write {name}: ${{{name}}} "
        "and set it where the environment runs"
    )


def shown_value(name: str, value: str | None) -> str | None:
    """An env var's value as Kiln shows it: hidden when the name looks like a secret's."""
    if value is None or is_reference(value):
        return value
    return REDACTED if looks_secret(name) else value


def _hide_userinfo(match: re.Match[str]) -> str:
    parts = match.group("userinfo").split(":", 1)
    if is_reference(parts[-1]):  # the password (or a lone token) is read from the environment
        return match.group(0)
    user = (
        parts[0]
        if len(parts) == 2 and not looks_secret(parts[0]) and len(parts[0]) < 40
        else REDACTED
    )
    return (
        f"{match.group('scheme')}{user}:{REDACTED}@"
        if len(parts) == 2
        else f"{match.group('scheme')}{REDACTED}@"
    )


def redact(text: str) -> str:
    """Hide credentials inside URLs (``https://u:pw@host`` -> ``https://u:<redacted>@host``)
    and Kiln's own access tokens."""
    return _TOKEN.sub(REDACTED, _URL_USERINFO.sub(_hide_userinfo, text))


def url_has_literal_credentials(url: str) -> bool:
    """True when a URL carries a password, or a lone user name that may be a token
    (``https://ghp_xxx@host``), that is not a ``${VAR}`` reference. ssh URLs name a login
    (``git@host``), not a secret."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc or "ssh" in parts.scheme.lower():
        return False
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return not is_reference(userinfo.split(":", 1)[-1])


def strip_url_credentials(url: str) -> str:
    """The URL without ``user:password@``: credentials never enter a digest."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _userinfo(url: str) -> str | None:
    """A URL's ``user:password`` (``scheme://`` optional), or None without one."""
    text = url.strip()
    netloc = urlsplit(text if "://" in text else f"//{text}").netloc
    return netloc.rpartition("@")[0] if "@" in netloc else None


def credential_references(url: str) -> list[str]:
    """The names of the ``${NAME}`` references in a URL's ``user:password@`` part."""
    return references(_userinfo(url) or "")


def basic_authorization(url: str, values: Mapping[str, str]) -> str | None:
    """The ``Authorization`` header value (``Basic ...``) for a URL's ``user:password@``, its
    references expanded from ``values`` (the caller checked they are all there; a lone user
    name, such as a token, has an empty password, as in uv); None for a URL without one."""
    userinfo = _userinfo(url)
    if userinfo is None:
        return None
    user, _, password = unquote(userinfo).partition(":")
    pair = f"{expand(user, values)}:{expand(password, values)}"
    return f"Basic {base64.b64encode(pair.encode()).decode()}"


def url_with_reference(url: str, variable: str = "ENV_VAR") -> str:
    """The fix to show for a URL with a plain-text password: its user kept (when it is not
    itself the token), the secret replaced by ``${variable}``. Never contains the secret."""
    parts = urlsplit(url.strip())
    userinfo, _, host = parts.netloc.rpartition("@")
    user, separator, _ = userinfo.partition(":")
    login = f"{user}:" if separator and user and not looks_secret(user) else "USER:"
    netloc = f"{login}${{{variable}}}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def plain_password_message(url: str, variable: str = "ENV_VAR") -> str:
    """The bad URL (its secret hidden) and the ``${VAR}`` fix, for a one-line error."""
    return (
        f"{redact(url.strip())!r} carries a plain-text password; write "
        f"{url_with_reference(url, variable)} so the secret is read from the environment"
    )
