"""The one YAML loader: every YAML file Kiln reads goes through ``parse_yaml`` or ``compose_yaml``.

PyYAML's safe loader still lets a small file ask for unbounded work. Aliases that nest aliases
(an "alias bomb": 487 bytes, seven levels) share nodes while loading but are written out in
full when the data is stored or printed, and each level of nesting costs a few Python frames,
so 100,000 levels end in a RecursionError. This loader counts both while composing, before
anything is built or stored, and refuses duplicate keys. The size is bounded by the reader
(``read_text_limited``) and again here for text that came from elsewhere.
"""

from __future__ import annotations

from typing import Any

import yaml

from kiln.environment.files import MAX_DEFINITION_FILE_BYTES
from kiln.errors import InvalidDefinition

MAX_YAML_DEPTH = 100
"""Levels of nesting a document may have; definitions use fewer than ten."""

MAX_ALIAS_VALUES = 10_000
"""Values the aliases (``*name``) of one document may repeat, counted as if written out."""

TOO_LONG_NUMBER = "a number has more than 4,300 digits; quote it if it is text"


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that bounds nesting and alias expansion and refuses duplicate keys.

    Messages raised here leave out the file name: ``parse_yaml`` puts it in front.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._values = 0  # values composed so far, each alias counted as what it repeats
        self._alias_values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its size written out, once complete

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            return self._compose_alias(parent, index)
        mark = self.current_event.start_mark  # the event check_event just peeked at
        if self._depth >= MAX_YAML_DEPTH:
            raise InvalidDefinition(
                f"nesting deeper than {MAX_YAML_DEPTH} levels at line {mark.line + 1}, "
                f"column {mark.column + 1}; a definition needs a few levels: flatten it"
            )
        start = self._values
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._values += 1
        self._sizes[id(node)] = self._values - start
        return node

    def _compose_alias(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        line = self.current_event.start_mark.line + 1
        node = super().compose_node(parent, index)  # the anchored node itself, shared
        size = self._sizes.get(id(node))
        if size is None:
            raise InvalidDefinition(
                f"the alias at line {line} repeats the value it is inside of, which never "
                "ends; write the value out instead"
            )
        self._values += size
        self._alias_values += size
        if self._alias_values > MAX_ALIAS_VALUES:
            raise InvalidDefinition(
                f"the aliases (*name) up to line {line} repeat over {MAX_ALIAS_VALUES:,} "
                "values (an alias bomb?); write the values out instead of nesting aliases"
            )
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            # A tag or a timestamp Python cannot build (`2024-02-30`, `!!int x`, an empty
            # `!!int`): PyYAML lets these escape as Python errors, but they are bad input.
            problem = TOO_LONG_NUMBER if "digits" in str(exc) else str(exc)
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, (list, dict, set)):
            raise InvalidDefinition(
                f"a {type(key).__name__} used as a key at line {line}; keys must be plain values"
            )
        if key in seen:
            raise InvalidDefinition(f"duplicate key `{key}` at line {line}; keep one of them")
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_BoundedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def parse_yaml(text: str, *, source: str) -> Any:
    """The data of one YAML document, or InvalidDefinition naming ``source`` and the fix."""
    return _load(text, source=source, node_only=False)


def compose_yaml(text: str, *, source: str) -> yaml.Node | None:
    """The node tree of one YAML document (scalars as written), under the same bounds."""
    node: yaml.Node | None = _load(text, source=source, node_only=True)
    return node


def _load(text: str, *, source: str, node_only: bool) -> Any:
    if len(text) > MAX_DEFINITION_FILE_BYTES:
        raise InvalidDefinition(
            f"{source} is {len(text):,} characters, over the {MAX_DEFINITION_FILE_BYTES:,} "
            "limit for definition files; is this the right file?"
        )
    try:
        return _compose_or_construct(text, node_only=node_only)
    except InvalidDefinition as exc:
        raise InvalidDefinition(f"{source}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidDefinition(
            f"{source} is not valid YAML{where}: {_one_line(exc.problem or str(exc))}"
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        raise InvalidDefinition(
            f"{source} is not valid YAML: character U+{exc.character:04X} at position "
            f"{exc.position} is a special character YAML does not allow; remove it"
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition(f"{source} is not valid YAML: {_one_line(str(exc))}") from None


def _compose_or_construct(text: str, *, node_only: bool) -> Any:
    loader = _BoundedLoader(text)  # the reader checks every character here already
    try:
        return loader.get_single_node() if node_only else loader.get_single_data()
    finally:
        loader.dispose()


def _one_line(text: str) -> str:
    return " ".join(text.split())
