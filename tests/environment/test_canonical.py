"""The two digests: golden values pinned across processes, machines and releases, and the
properties they promise. If a golden value changes, every user's builds are invalidated: bump
the recipe on purpose and say so in the release notes, never by accident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.environment.canonical import build_form, build_hash, canonical_json, definition_digest
from kiln.environment.definition import EnvironmentDefinition

BASIC = {
    "name": "train",
    "python": {"version": "3.11", "pip": {"packages": ["numpy==2.4.6", "pandas>=2"]}},
}
FULL = {
    "name": "full",
    "version": "4",
    "description": "everything",
    "tags": {"team": "ml"},
    "python": {
        "version": "3.10",
        "conda": {"channels": ["conda-forge", "defaults"], "packages": ["numpy=1.26", "pip"]},
        "pip": {
            "packages": [
                "Requests[socks,Security] >= 2.31 ; python_version > '3.8'",
                "torch==2.13.0 --hash=sha256:ABCD",
            ],
            "index_url": "https://user:${TOKEN}@idx.example/simple",
            "extra_index_urls": ["https://extra.example/simple"],
            "pre": True,
        },
    },
    "environment_variables": {"B": "2", "A": "1"},
    "docker": {
        "base_image": "repo.example/img:1.2",
        "base_image_registry": {
            "address": "repo.example",
            "username": "u",
            "password": "${REG_PW}",
        },
        "platform": {"os": "Linux", "architecture": "amd64"},
    },
    "spark": {
        "packages": [{"group": "g", "artifact": "a", "version": "1"}],
        "precache_packages": False,
    },
    "inferencing_stack_version": "latest",
}
GOLDEN = {
    "basic": (
        "fb2bdf80fab2893125138419faf0ca0dc9de8fc382590390c79dbf9ae59a2e0d",
        "db6aebd7a1be1cc315f3b4226beab0d3e73866658c6a856b76583e5c244ec5c6",
    ),
    "full": (
        "2adc5a68b0d0b3fe5ca5193c93840b16049c32ca30bf1e38dfc37511d7a8c2d2",
        "153fbeb18a75616ac93ab89ea5da30c2e80f264ed6584a8d0dd6e34062745430",
    ),
}


def d(data: dict[str, object]) -> EnvironmentDefinition:
    return EnvironmentDefinition.model_validate(data)


def test_golden_values() -> None:
    assert (build_hash(d(BASIC)), definition_digest(d(BASIC))) == GOLDEN["basic"]
    assert (build_hash(d(FULL)), definition_digest(d(FULL))) == GOLDEN["full"]


def test_the_canonical_form_is_documented_shape() -> None:
    form = build_form(d(FULL))
    assert form["recipe"] == "kiln.build/1"
    pip = form["python"]["pip"]
    assert pip["packages"] == [
        'requests[security,socks]>=2.31; python_version > "3.8"',
        "torch==2.13.0 --hash=sha256:abcd",
    ]
    assert pip["index_url"] == "https://idx.example/simple"  # credentials never enter a digest
    assert "environment_variables" not in json.dumps(form)
    assert canonical_json(form) == json.dumps(form, sort_keys=True, separators=(",", ":")).encode()


def test_same_values_in_another_process_with_another_hash_seed() -> None:
    script = (
        "import json,sys; from kiln.environment.canonical import build_hash, definition_digest;"
        "from kiln.environment.definition import EnvironmentDefinition as E;"
        "d=E.model_validate(json.loads(sys.argv[1])); print(build_hash(d), definition_digest(d))"
    )
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps(FULL)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.split()
        assert tuple(out) == GOLDEN["full"]


def test_name_version_description_tags_are_in_neither_digest() -> None:
    other = {**FULL, "name": "renamed", "version": "99", "description": "x", "tags": {}}
    assert build_hash(d(other)) == build_hash(d(FULL))
    assert definition_digest(d(other)) == definition_digest(d(FULL))


def test_env_vars_are_in_the_definition_digest_only() -> None:
    other = {**FULL, "environment_variables": {"A": "1", "B": "3"}}
    assert build_hash(d(other)) == build_hash(d(FULL))
    assert definition_digest(d(other)) != definition_digest(d(FULL))
    reordered = {**FULL, "environment_variables": {"A": "1", "B": "2"}}  # a mapping has no order
    assert definition_digest(d(reordered)) == definition_digest(d(FULL))


def test_package_and_channel_order_is_kept() -> None:
    swapped = {
        **BASIC,
        "python": {"version": "3.11", "pip": {"packages": ["pandas>=2", "numpy==2.4.6"]}},
    }
    assert build_hash(d(swapped)) != build_hash(d(BASIC))
    channels = {"name": "c", "python": {"conda": {"channels": ["a", "b"]}}}
    flipped = {"name": "c", "python": {"conda": {"channels": ["b", "a"]}}}
    assert build_hash(d(channels)) != build_hash(d(flipped))


def test_spelling_that_means_the_same_hashes_the_same() -> None:
    spelled = {
        **BASIC,
        "python": {"version": "3.11", "pip": {"packages": ["NumPy == 2.4.6", "Pandas >=2"]}},
    }
    assert build_hash(d(spelled)) == build_hash(d(BASIC))
    crlf = {"name": "x", "docker": {"dockerfile": "FROM a\r\nRUN b  \r\n"}}
    lf = {"name": "x", "docker": {"dockerfile": "FROM a\nRUN b\n"}}
    assert build_hash(d(crlf)) == build_hash(d(lf))


def test_an_import_check_is_a_build_input_and_its_absence_changes_nothing() -> None:
    # A build shared by hash must have passed the check its definition asks for; an empty
    # list is pruned, so definitions without one keep their golden digests.
    empty = {**BASIC, "python": {**BASIC["python"], "check_imports": []}}  # type: ignore[dict-item]
    assert build_hash(d(empty)) == GOLDEN["basic"][0]
    checked = {**BASIC, "python": {**BASIC["python"], "check_imports": ["numpy"]}}  # type: ignore[dict-item]
    assert build_hash(d(checked)) != GOLDEN["basic"][0]
    assert build_form(d(checked))["python"]["check_imports"] == ["numpy"]


def test_pip_alone_in_conda_is_the_same_build_as_none() -> None:
    alone = {**BASIC, "python": {**BASIC["python"], "conda": {"packages": ["pip"]}}}  # type: ignore[dict-item]
    assert build_hash(d(alone)) == build_hash(d(BASIC))


def test_local_files_hash_by_content_not_path(tmp_path: Path) -> None:
    from kiln.formats.base import resolve_local_inputs

    for folder, content in (("a", b"wheel-1"), ("b", b"wheel-1"), ("c", b"wheel-2")):
        (tmp_path / folder / "wheels").mkdir(parents=True)
        (tmp_path / folder / "wheels" / "x-1.0-py3-none-any.whl").write_bytes(content)
    data = {"name": "w", "python": {"pip": {"packages": ["./wheels/x-1.0-py3-none-any.whl"]}}}
    hashes = [build_hash(resolve_local_inputs(d(data), tmp_path / f)) for f in ("a", "b", "c")]
    assert hashes[0] == hashes[1] != hashes[2]


names = st.from_regex(r"[a-z]([a-z0-9\-]{0,14}[a-z0-9])?", fullmatch=True)
requirement = st.builds(
    lambda n, v: f"{n}=={v}", names, st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
)


@settings(max_examples=80, deadline=None)
@given(
    packages=st.lists(requirement, min_size=1, max_size=6, unique_by=lambda r: r.split("==")[0]),
    name=names,
    other_name=names,
    tags=st.dictionaries(names, names, max_size=3),
)
def test_renaming_never_changes_the_build_hash(
    packages: list[str], name: str, other_name: str, tags: dict[str, str]
) -> None:
    one = d({"name": name, "python": {"pip": {"packages": packages}}})
    two = d(
        {
            "name": other_name,
            "version": "7",
            "tags": tags,
            "description": "d",
            "python": {"pip": {"packages": packages}},
        }
    )
    assert build_hash(one) == build_hash(two)


@settings(max_examples=80, deadline=None)
@given(
    packages=st.lists(requirement, min_size=1, max_size=6, unique_by=lambda r: r.split("==")[0]),
    index=st.integers(min_value=0),
    change=st.sampled_from(["bump", "add", "remove", "conda"]),
    extra=names,
)
def test_any_package_change_changes_the_build_hash(
    packages: list[str], index: int, change: str, extra: str
) -> None:
    before = d({"name": "p", "python": {"pip": {"packages": packages}}})
    changed = list(packages)
    conda: list[str] = []
    position = index % len(changed)
    if change == "bump":
        changed[position] = changed[position] + ".1"
    elif change == "add":
        changed.append(f"zz-{extra}==1.0")
    elif change == "remove":
        del changed[position]
    else:
        conda = [f"{extra}=1"]
    after = d({"name": "p", "python": {"conda": {"packages": conda}, "pip": {"packages": changed}}})
    assert build_hash(after) != build_hash(before)


def test_bare_pip_in_conda_is_implied_by_pip_packages() -> None:
    base = {
        "name": "c",
        "python": {
            "conda": {"packages": ["numpy=1.26"]},
            "pip": {"packages": ["requests==2.32.3"]},
        },
    }
    with_pip = {
        "name": "c",
        "python": {
            "conda": {"packages": ["pip", "numpy=1.26"]},
            "pip": {"packages": ["requests==2.32.3"]},
        },
    }
    pinned_pip = {
        "name": "c",
        "python": {
            "conda": {"packages": ["numpy=1.26", "pip=24.0"]},
            "pip": {"packages": ["requests==2.32.3"]},
        },
    }
    assert build_hash(d(base)) == build_hash(d(with_pip))
    assert build_hash(d(base)) != build_hash(d(pinned_pip))  # a pinned pip is a real choice
