"""The lock reader, fuzzed: a stored lock row (pylock.toml, kiln-conda.json or installed.json)
with any text, its digest either matching (a teammate who also fixed ``lock_digest``) or not.
Verifying it, then exporting it as ``kiln env lock`` does, returns text or raises Kiln's own
error: a lock that must not be installed is a workspace problem (``InvalidLock``, exit 5, as
issue 15 item 8 asks for a corrupt lock), an export format the lock lacks is invalid input (2).
Nothing else: no TOMLDecodeError, KeyError, TypeError or AttributeError."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.builders import conda, user_managed, venv
from kiln.builders.base import Lock
from kiln.buildlocks import verify_lock
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.registry.lock_queries import LockRow
from kilntesting.fuzz import as_json, documents, parses_or_refuses, scalars, shaped, values

FUZZ = settings.get_profile("kiln-fuzz")
PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "six"
version = "1.16.0"
wheels = [{ url = "https://files.example/six-1.16.0-py2.py3-none-any.whl", hashes = { sha256 = "8abb" } }]

[[packages]]
name = "demo"
version = "1.0"
archive = { path = "wheels/demo-1.0-py3-none-any.whl", hashes = { sha256 = "bbbb" } }

[[packages]]
name = "tool"
version = "2.0"
sdist = { url = "https://files.example/tool-2.0.tar.gz", hashes = { sha256 = "cccc" } }
"""
CONDA = json.dumps(
    {
        "conda": [
            {"name": "python", "version": "3.11.9", "url": "https://c.example/p.conda",
             "sha256": "dd", "build": "h1"},
            {"name": "numpy", "version": "1.26.4", "url": "https://c.example/n.conda",
             "sha256": "ee", "build": "py311"},
        ],
        "pip": PYLOCK,
    }
)  # fmt: skip
INSTALLED = json.dumps([{"name": "six", "version": "1.16.0"}, {"name": "numpy", "version": "2"}])
PACKAGE_KEYS = ["name", "version", "wheels", "sdist", "archive", "vcs", "directory", "hashes"]


def toml_value(value: Any) -> str:
    """A value as TOML (inline tables and arrays): enough to write any shaped lock."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + ", ".join(items) + "}"
    return '""'  # None: TOML has no null


def as_pylock(packages: list[dict[str, Any]]) -> str:
    lines = ['lock-version = "1.0"']
    for package in packages:
        lines.append("[[packages]]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in package.items() if v is not None]
    return "\n".join(lines) + "\n"


pylock_texts = documents(
    [PYLOCK], st.lists(shaped(PACKAGE_KEYS), max_size=3), as_pylock
) | st.sampled_from([PYLOCK]).map(lambda t: t.replace("[[packages]]", "[packages]", 1))
conda_texts = documents(
    [CONDA],
    shaped(["conda", "pip"]) | st.fixed_dictionaries(
        {"conda": st.lists(shaped(["name", "version", "url", "sha256", "build"])),
         "pip": pylock_texts.filter(lambda t: isinstance(t, str)) | scalars}
    ),
    as_json,
)  # fmt: skip
installed_texts = documents([INSTALLED], st.lists(shaped(["name", "version"])) | values(), as_json)
LOCKS = st.one_of(
    st.tuples(st.just(venv.LOCK_FORMAT), pylock_texts),
    st.tuples(st.just(conda.LOCK_FORMAT), conda_texts),
    st.tuples(st.just(user_managed.LOCK_FORMAT), installed_texts),
    st.tuples(st.sampled_from(["lock.v9", ""]), pylock_texts),
)
DEFINITIONS = [
    EnvironmentDefinition.model_validate(
        {"name": "p", "python": {"version": "3.11", "pip": {"packages": ["six==1.16.0"]}}}
    ),
    EnvironmentDefinition.model_validate(
        {"name": "c", "python": {"version": "3.11", "conda": {"packages": ["numpy=1.26.4"]},
                                 "pip": {"packages": ["six==1.16.0; python_version<'4'"]}}}
    ),
]  # fmt: skip
BUILDERS = {
    venv.LOCK_FORMAT: venv.export_lock,
    conda.LOCK_FORMAT: conda.export_lock,
    user_managed.LOCK_FORMAT: user_managed.export_lock,
}


def verified_export(row: LockRow, definition: EnvironmentDefinition, fmt: str) -> str:
    """What ``kiln env lock`` does with a stored row (kiln.buildinfo.export_lock)."""
    verify_lock(row, definition, reference="fuzzed:1")
    try:
        return BUILDERS[row.lock_format](Lock(row.lock_format, row.lock_text), fmt, header="h")
    except ValueError as exc:
        raise InvalidDefinition(str(exc)) from None


@FUZZ
@given(
    LOCKS,
    st.booleans(),
    st.sampled_from(DEFINITIONS),
    st.sampled_from(["requirements", "pylock", "conda"]),
)
def test_a_stored_lock_is_verified_and_exported_or_refused(
    lock: tuple[str, str | bytes],
    digest_matches: bool,
    definition: EnvironmentDefinition,
    fmt: str,
) -> None:
    lock_format, content = lock
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = text.encode("utf-8", "replace").decode("utf-8")  # a row holds valid text
    digest = hashlib.sha256(text.encode()).hexdigest() if digest_matches else "0" * 64
    row = LockRow(
        "b" * 64, "linux-x86_64", 1, digest, lock_format, text, [], "uv",
        dt.datetime.now(dt.timezone.utc),
    )  # fmt: skip
    if lock_format not in BUILDERS:  # no builder installs it: verifying must refuse it
        parses_or_refuses(
            lambda: verify_lock(row, definition, reference="fuzzed:1"), exit_codes=(5,)
        )
        return
    parses_or_refuses(lambda: verified_export(row, definition, fmt), exit_codes=(2, 5))
