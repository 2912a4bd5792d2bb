"""No builder name outside src/kiln/builders/: the core asks the registered builders, never
switches on their names. "conda" is also a definition section, an installer and a file format,
so the check looks for builder-ness (a name compared with something called builder, passed as
a builder, or used to look a builder up), not for the word."""

from __future__ import annotations

import ast
from pathlib import Path

from kiln import builders
from kiln.builders import conda, image, user_image, user_managed, venv
from kiln.builders.base import Builder
from kiln.builders.choice import BUILDERS

SRC = Path(builders.__file__).resolve().parents[1]
NAMES = set(BUILDERS)
LOOKUPS = {"get", "choose", "module"}  # functions of kiln.builders that take or give names


def _names_in(node: ast.AST) -> list[str]:
    """Builder names written as literals in ``node`` (a constant, or a tuple/list/set of them)."""
    if isinstance(node, ast.Constant) and node.value in NAMES:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [n for element in node.elts for n in _names_in(element)]
    return []


def _about_builders(node: ast.AST) -> bool:
    """``node`` mentions a builder: a name, attribute or string key containing "builder"."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and "builder" in inner.id.lower():
            return True
        if isinstance(inner, ast.Attribute) and "builder" in inner.attr.lower():
            return True
        if isinstance(inner, ast.Constant) and inner.value == "builder":
            return True
    return False


def builder_names_used(source: str) -> list[tuple[int, str]]:
    """(line, name) for each place ``source`` uses a builder name as a builder name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_about_builders(side) for side in sides):
                found += [(node.lineno, n) for side in sides for n in _names_in(side)]
        elif isinstance(node, ast.Subscript) and _about_builders(node.value):
            found += [(node.lineno, n) for n in _names_in(node.slice)]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in LOOKUPS and _about_builders(func):
                found += [(node.lineno, n) for arg in node.args for n in _names_in(arg)]
            found += [
                (node.lineno, n)
                for keyword in node.keywords
                if keyword.arg and "builder" in keyword.arg
                for n in _names_in(keyword.value)
            ]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _about_builders(key):
                    found += [(node.lineno, n) for n in _names_in(value)]
    return found


def test_no_builder_name_outside_the_builders_package() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if (SRC / "builders") in path.parents:
            continue
        for line, name in builder_names_used(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(SRC)}:{line}: {name!r}")
    assert offenders == []


def test_the_check_finds_the_switches_it_is_meant_to_forbid() -> None:
    # What the core did before builders said it themselves, one of each shape.
    assert builder_names_used('if pointer["builder"] in ("venv", "conda"):\n    pass') == [
        (1, "venv"),
        (1, "conda"),
    ]
    assert builder_names_used('if builder == "conda":\n    pass') == [(1, "conda")]
    assert builder_names_used('x = builders.module("user-managed")') == [(1, "user-managed")]
    assert builder_names_used('x = BUILDERS["venv"]') == [(1, "venv")]
    assert builder_names_used('record(builder="venv")') == [(1, "venv")]
    assert builder_names_used('x = {"builder": "conda"}') == [(1, "conda")]
    # The other meanings of the word stay allowed.
    assert builder_names_used('if dist["installer"] == "conda":\n    pass') == []
    assert builder_names_used('FORMATS = ("requirements", "pylock", "conda")') == []
    assert builder_names_used('data = {"conda": {"channels": []}}') == []


def test_every_registered_builder_is_the_module_under_its_name() -> None:
    registered: dict[str, Builder] = {
        "venv": venv,
        "conda": conda,
        "user-managed": user_managed,
        "image": image,
        "user-image": user_image,
    }
    assert registered == BUILDERS
    assert all(BUILDERS[name].name == name for name in BUILDERS)
