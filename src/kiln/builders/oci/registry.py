"""The workspace's image registry, the shared cache of built images: its address (a URL, with
a user and a ``${VAR}`` password reference at most; ``http://`` means a registry without TLS),
and the one question asked before every image build: does it hold this tag? 200 means yes,
404 means no, and any other answer is an error, never "exists"."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kiln.builders.base import BuildError
from kiln.secrets import expand, is_reference

if TYPE_CHECKING:
    import httpx

REPOSITORY = "kiln/env"  # where environment images live under the registry's path
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Registry:
    url: str  # as configured (its password a ${VAR} reference at most)
    host: str  # host[:port]
    prefix: str  # a path under the host, "" or "team/images/"
    insecure: bool  # plain http
    username: str | None = None
    password: str | None = None  # a ${VAR} reference

    def reference(self, tag: str, repository: str = REPOSITORY) -> str:
        return f"{self.host}/{self.prefix}{repository}:{tag}"

    def by_digest(self, digest: str, repository: str = REPOSITORY) -> str:
        return f"{self.host}/{self.prefix}{repository}@{digest}"

    def tls_args(self) -> list[str]:
        """skopeo's and podman's flag for a registry without TLS."""
        return ["--tls-verify=false"] if self.insecure else []

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) with the password read from the environment now, or None."""
        if self.username is None:
            return None
        password = expand(self.password or "", os.environ, default="")
        if self.password and not password:
            raise BuildError(
                f"the image registry {self.url} uses {self.password}, which is not set; export it"
            )
        return self.username, password


def parse(url: str) -> Registry:
    """``http(s)://[USER[:${VAR}]@]HOST[:PORT][/PATH]``; ValueError naming the fix."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"image registry {url!r} is not a URL; write https://HOST[:PORT][/PATH] "
            "(http:// for a registry without TLS)"
        )
    password = parts.password
    if password is not None and not is_reference(password):
        raise ValueError(
            "the image registry URL holds a plain-text password; write "
            "https://USER:${REGISTRY_PASSWORD}@HOST and export the variable"
        )
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    prefix = parts.path.strip("/")
    if prefix and not re.fullmatch(r"[a-z0-9]+([._/-][a-z0-9]+)*", prefix):
        raise ValueError(
            f"image registry path {prefix!r} is not a repository path; use lower-case letters, "
            "digits and '/', '.', '_', '-'"
        )
    return Registry(
        url.strip(),
        host,
        f"{prefix}/" if prefix else "",
        parts.scheme == "http",
        parts.username,
        password,
    )


def _split(reference: str) -> tuple[str, str, str]:
    """host, repository, tag-or-digest of ``HOST/REPO:TAG`` or ``HOST/REPO@sha256:...``."""
    host, _, rest = reference.partition("/")
    if "@" in rest:
        repository, _, tag = rest.partition("@")
    else:
        repository, _, tag = rest.rpartition(":")
    return host, repository, tag


def manifest_digest(registry: Registry, reference: str) -> str | None:
    """The digest of ``reference``'s manifest in ``registry``, None when it has none (404)."""
    import httpx

    host, repository, tag = _split(reference)
    scheme = "http" if registry.insecure else "https"
    url = f"{scheme}://{host}/v2/{repository}/manifests/{tag}"
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False) as client:
            response = client.head(url, headers={"Accept": ACCEPT})
            if response.status_code == 401:
                response = _with_credentials(client, registry, response, url)
    except httpx.HTTPError as exc:
        raise BuildError(
            f"the image registry {registry.url} did not answer ({type(exc).__name__}: {exc}); "
            "check that it runs and the address is right (`kiln doctor`)"
        ) from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise BuildError(
            f"the image registry {registry.url} answered {response.status_code} for {reference}; "
            "nothing was assumed to exist (check its credentials and address)"
        )
    return response.headers.get("Docker-Content-Digest") or None


def _with_credentials(
    client: httpx.Client, registry: Registry, challenge: httpx.Response, url: str
) -> httpx.Response:
    """The HEAD again with Basic credentials, or with a bearer token from the realm the
    registry names (the Docker token protocol)."""
    credentials = registry.credentials()
    header = challenge.headers.get("WWW-Authenticate", "")
    if credentials is None:
        return challenge
    if header.lower().startswith("bearer"):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
        realm = fields.pop("realm", "")
        token = client.get(realm, params=fields, auth=credentials)
        if token.status_code != 200:
            return token
        data = token.json()
        bearer = data.get("token") or data.get("access_token") or ""
        return client.head(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {bearer}"})
    return client.head(url, headers={"Accept": ACCEPT}, auth=credentials)
