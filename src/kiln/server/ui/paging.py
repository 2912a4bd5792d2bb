"""Server-side paging for the list pages: a page number from the address, checked, and the
links that keep the page's other filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar
from urllib.parse import urlencode

PAGE_SIZE = 50
T = TypeVar("T")


class Pages(NamedTuple):
    number: int
    total: int | None  # None when counting would cost a scan (runs)
    has_next: bool

    @property
    def last(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // PAGE_SIZE))

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE


def page_number(text: str | None, errors: dict[str, str]) -> int:
    """The page asked for; a bad one is reported beside the field and page 1 is shown."""
    if text is None or text == "":
        return 1
    if not text.isdigit() or int(text) < 1:
        errors["page"] = f"`page`: {text!r} is not a page number; use 1 or more"
        return 1
    return int(text)


def counted(number: int, total: int) -> Pages:
    return Pages(number, total, number * PAGE_SIZE < total)


def linker(**kept: str | None) -> Callable[..., str]:
    """``query(page=2)``: the query string of this page's filters with ``changes``."""

    def query(**changes: object) -> str:
        values = {**kept, **{k: str(v) for k, v in changes.items()}}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})

    return query


def paged(found: list[T], page: str, errors: dict[str, str]) -> tuple[list[T], Pages]:
    """The rows of the page asked for (a bad page number: page 1, the error beside it)."""
    pages = counted(page_number(page, errors), len(found))
    return found[pages.offset : pages.offset + PAGE_SIZE], pages
