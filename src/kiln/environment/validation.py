"""Turn pydantic's validation errors into one Kiln error that names the field and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kiln.environment.definition import STORED, EnvironmentDefinition
from kiln.errors import InvalidDefinition

M = TypeVar("M", bound=BaseModel)


_NAME_HELP = "use letters, digits, '.', '_' and '-', starting with a letter or digit"
_FIELD_HELP = {  # by the last part of the field's path
    "name": f"{_NAME_HELP} (e.g. 'team-train')",
    "version": f"{_NAME_HELP} (e.g. '3' or '2.0')",
    "python.version": "write a Python 3 version such as '3.11' or '3.11.7'",
}


def _help_for(location: Sequence[int | str], fallback: str) -> str:
    path = field_path(location)
    return _FIELD_HELP.get(path) or _FIELD_HELP.get(str(location[-1]) if location else "", fallback)


def field_path(location: Sequence[int | str]) -> str:
    """``("python", "pip", "packages", 2)`` -> ``python.pip.packages[2]``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(model: type[BaseModel], location: Sequence[int | str]) -> list[str]:
    """The keys valid at ``location`` (whose last part is the unknown key)."""
    current: Any = model
    for part in location[:-1]:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        for arg in (*getattr(annotation, "__args__", ()), annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
                break
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _section_fix(model: type[BaseModel], location: Sequence[int | str], value: Any) -> str:
    """A section (``python``, ``python.pip``, ``docker``...) given as a scalar or a list: say
    how to write it, for the two usual slips, else which keys it takes."""
    keys = _allowed_keys(model, (*location, ""))
    section = str(location[-1]) if location else "it"
    got = type(value).__name__
    if isinstance(value, list) and "packages" in keys:
        return f"is a section, not a list; put the list under its `packages` key: {section}: {{packages: [...]}}"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and "version" in keys:
        text = value if isinstance(value, str) else "X.Y"  # YAML has already read 3.10 as 3.1
        return f'is a section, not a {got}; write {section}: {{version: "{text}"}}'
    return f"is a section, not a {got}; its keys: {', '.join(keys)}"


def describe(
    exc: ValidationError, model: type[BaseModel], source: str | None, prefix: tuple[str, ...] = ()
) -> str:
    first = exc.errors()[0]
    location = first["loc"]
    where = f"`{field_path(prefix + tuple(location))}`" if location or prefix else "the definition"
    suffix = f" in {source}" if source else ""
    if first["type"] == "extra_forbidden":
        key = str(location[-1])
        allowed = _allowed_keys(model, location)
        close = difflib.get_close_matches(key, allowed, n=1)
        fix = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(allowed)}"
        return f"unknown key {where}{suffix}; {fix}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "model_type":
        message = _section_fix(model, location, first.get("input"))
    elif first["type"].endswith("_type"):
        message = f"{message} (got {type(first.get('input')).__name__})"
    elif first["type"] == "string_pattern_mismatch":
        message = (
            f"{first.get('input')!r} is not allowed: {_help_for(prefix + tuple(location), message)}"
        )
    elif first["type"] == "string_too_short" and location and location[-1] in ("name", "version"):
        message = f"is empty; {_help_for(prefix + tuple(location), message)}"
    elif first["type"] == "string_too_long" and location and location[-1] in ("name", "version"):
        message = f"is {len(str(first.get('input')))} characters, over the limit of {first.get('ctx', {}).get('max_length')}; shorten it"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}{suffix}: {message}{tail}"


def validate_model(
    model: type[M],
    data: Mapping[str, Any],
    *,
    source: str | None = None,
    prefix: tuple[str, ...] = (),
    stored: bool = False,
) -> M:
    """Validate ``data`` into ``model`` or raise ``InvalidDefinition`` naming the field
    (``prefix`` is where ``model`` sits in a whole definition, e.g. ``("python",)``). ``stored``
    data was registered before: secrets rules added since then do not make it unreadable."""
    try:
        return model.model_validate(data, context={STORED: stored})
    except ValidationError as exc:
        raise InvalidDefinition(describe(exc, model, source, prefix)) from None


def validate_definition(
    data: Mapping[str, Any], *, source: str | None = None, stored: bool = False
) -> EnvironmentDefinition:
    if not isinstance(data, Mapping):
        where = f" in {source}" if source else ""
        raise InvalidDefinition(f"the definition{where} must be a mapping of keys to values")
    return validate_model(EnvironmentDefinition, data, source=source, stored=stored)


def assign(model: BaseModel, attribute: str, value: Any, *, where: str = "") -> None:
    """``model.attribute = value``, validated. A refused value leaves ``model`` as it was and
    raises ``InvalidDefinition`` naming the field by its path in the definition: ``where`` is
    the path of ``model`` itself (``""`` for the definition, ``"docker"`` for its docker part).
    """
    prefix = tuple(where.split(".")) if where else ()
    if attribute not in type(model).model_fields:
        fields = list(type(model).model_fields)
        close = difflib.get_close_matches(attribute, fields, n=1)
        fix = f"did you mean `{close[0]}`?" if close else f"valid fields: {', '.join(fields)}"
        raise InvalidDefinition(f"`{field_path((*prefix, attribute))}` is not a field; {fix}")
    before = dict(model.__dict__)
    fields_set = set(model.model_fields_set)
    try:
        setattr(model, attribute, value)
    except ValidationError as exc:
        # pydantic has already stored the value when a whole-model check refuses it: undo that.
        model.__dict__.clear()
        model.__dict__.update(before)
        object.__setattr__(model, "__pydantic_fields_set__", fields_set)
        raise InvalidDefinition(describe(exc, type(model), None, prefix)) from None
