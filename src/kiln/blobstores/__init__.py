"""Where a team server keeps artifacts, named by a URL (``kiln server --artifacts URL``):

- ``file:///PATH``: a folder on the server (the default: the served workspace's artifacts);
- ``s3://BUCKET/PREFIX?endpoint_url=http://HOST:PORT&region=REGION&addressing_style=path``:
  an S3-compatible object store through boto3. Credentials come from boto3's usual sources
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), or from
  ``s3://${KEY_VAR}:${SECRET_VAR}@BUCKET/...`` references to variables; never written out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from kiln.blobstores.base import BlobStore
from kiln.errors import UsageError
from kiln.secrets import expand, is_reference

S3_OPTIONS = ("endpoint_url", "region", "addressing_style")
FIELD = "--artifacts"


def _file_store(url: str) -> BlobStore:
    from kiln.blobstores.filesystem import FileBlobStore

    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/") or parts.query:
        raise UsageError(f"`{FIELD}`: {url!r} is not a folder URL; write file:///ABSOLUTE/PATH")
    return FileBlobStore(Path(path))


def _s3_credentials(url: str) -> dict[str, str]:
    """The keys given as ``${VAR}`` references in the URL, read from the environment."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return {}  # boto3 finds them itself
    key, secret = unquote(parts.username or ""), unquote(parts.password or "")
    if not (is_reference(key) and is_reference(secret)):
        raise UsageError(
            f"`{FIELD}`: the URL holds credentials in plain text; write "
            "s3://${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}@BUCKET/PREFIX, or leave them "
            "out and export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    values = {}
    for name, value in (("aws_access_key_id", key), ("aws_secret_access_key", secret)):
        values[name] = expand(value, os.environ, default="")
        if not values[name]:
            raise UsageError(f"`{FIELD}`: {value} is not set; export it before starting the server")
    return values


def _s3_store(url: str) -> BlobStore:
    import boto3
    from botocore.config import Config

    from kiln.blobstores.s3 import S3BlobStore

    parts = urlsplit(url)
    bucket = parts.hostname or ""
    if not bucket:
        raise UsageError(f"`{FIELD}`: the S3 URL names no bucket; write s3://BUCKET/PREFIX")
    credentials = _s3_credentials(url)
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - set(S3_OPTIONS))
    if unknown:
        raise UsageError(
            f"`{FIELD}`: unknown S3 option {unknown[0]!r}; use {', '.join(S3_OPTIONS)} "
            "(credentials come from the AWS environment variables)"
        )
    style = options.get("addressing_style", "path" if "endpoint_url" in options else "auto")
    if style not in ("auto", "path", "virtual"):
        raise UsageError(f"`{FIELD}`: addressing_style={style!r}; use auto, path or virtual")
    config = Config(
        s3=cast("Any", {"addressing_style": style}),  # a checked Literal, as a plain str
        signature_version="s3v4",  # presigned URLs too: AWS regions since 2014 take only v4
        # Send and check checksums only where S3 requires them: many S3-compatible stores
        # (Ceph before 18) reject the default ones. Kiln checks sha256 itself.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.client(
        "s3",
        endpoint_url=options.get("endpoint_url"),
        region_name=options.get("region"),
        config=config,
        aws_access_key_id=credentials.get("aws_access_key_id"),
        aws_secret_access_key=credentials.get("aws_secret_access_key"),
    )
    return S3BlobStore(bucket, parts.path, client)


BACKENDS: dict[str, Callable[[str], BlobStore]] = {"file": _file_store, "s3": _s3_store}


def open_blob_store(url: str) -> BlobStore:
    """The store a URL names; one line naming the fix for anything else."""
    scheme = urlsplit(url).scheme
    if scheme not in BACKENDS:
        raise UsageError(
            f"`{FIELD}`: {scheme or url!r} is not a store Kiln knows; "
            "use file:///PATH or s3://BUCKET/PREFIX?endpoint_url=..."
        )
    return BACKENDS[scheme](url)
