"""What the fuzz suite (tests/fuzz) shares: the invariant every parser keeps, and strategies
that make inputs near the formats (real documents mutated, known keys with values of any
shape) as well as far from them (any text, any bytes)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hypothesis import strategies as st

from kiln.errors import KilnError

T = TypeVar("T")
# Characters that mean something to YAML, JSON, requirements files and URLs, plus a few that
# break naive code (NUL, a lone surrogate is impossible in files, so BOM and line separators).
SYNTAX = "\n\r\t :-#&*!|>'\"%@`{}[],=<>~;\\/.$\x00\ufeff\u2028\x85"
text_near_syntax = st.text(alphabet=st.sampled_from(SYNTAX) | st.characters(), max_size=300)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["3.11", "numpy==2.4.6", "https://x.example/simple", "${VAR}", "./a.whl"])
)


def values() -> st.SearchStrategy[Any]:
    """Any JSON/YAML value, nested a few levels."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=12,
    )


def shaped(keys: Sequence[str], nested: dict[str, Sequence[str]] | None = None) -> Any:
    """Mappings of a format's own keys (and sections' keys) to values of any shape: they
    reach the code behind the syntax, where a KeyError or TypeError would hide."""
    nested = nested or {}

    def section(key: str) -> st.SearchStrategy[Any]:
        inner = nested.get(key)
        if inner is None:
            return values()
        return (
            st.dictionaries(st.sampled_from(list(inner)), values(), max_size=len(inner)) | values()
        )

    return st.lists(st.sampled_from(list(keys)), unique=True, max_size=len(keys)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: section(k) for k in chosen})
    )


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[str]) -> str:
    """A real document with a few edits: characters inserted, removed or replaced, lines
    duplicated or dropped. Most stay close to valid, which is where parsers go wrong."""
    text = draw(st.sampled_from(list(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(["insert", "delete", "replace", "dup-line", "drop-line"]))
        at = draw(st.integers(0, len(text)))
        if edit == "insert":
            text = text[:at] + draw(text_near_syntax.map(lambda s: s[:8])) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif edit == "replace" and at < len(text):
            text = text[:at] + draw(st.sampled_from(SYNTAX)) + text[at + 1 :]
        elif edit in ("dup-line", "drop-line"):
            lines = text.splitlines(keepends=True) or [""]
            index = draw(st.integers(0, len(lines) - 1))
            lines[index : index + 1] = [lines[index]] * (2 if edit == "dup-line" else 0)
            text = "".join(lines)
    return text


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def as_json(data: Any) -> str:
    return json.dumps(data, allow_nan=True)


def documents(
    seeds: Sequence[str], shapes: st.SearchStrategy[Any], dump: Callable[[Any], str]
) -> st.SearchStrategy[str | bytes]:
    """Texts for one file format: mutated real ones, shaped ones, any text and any bytes."""
    return st.one_of(
        mutated(seeds),
        shapes.map(dump),
        text_near_syntax,
        st.binary(max_size=200),
    )


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh folder per example (Hypothesis runs many examples in one test call)."""
    path = Path(tempfile.mkdtemp(prefix="kiln-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def parses_or_refuses(call: Callable[[], T], *, exit_codes: tuple[int, ...] = (2,)) -> T | None:
    """The invariant: ``call`` returns, or raises Kiln's own error with one of ``exit_codes``
    (2: invalid input) and a one-line message. Anything else (RecursionError, KeyError,
    UnicodeError, ...) fails the test."""
    try:
        return call()
    except KilnError as exc:
        assert exc.exit_code in exit_codes, f"{type(exc).__name__} exit {exc.exit_code}: {exc}"
        assert len(str(exc).splitlines()) == 1 and str(exc).strip(), repr(str(exc))
        return None
