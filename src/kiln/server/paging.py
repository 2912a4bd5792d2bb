"""Offset paging for list endpoints: ``limit`` and ``offset`` in, ``X-Total-Count`` out."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Query, Response

from kiln.server.answers import json_answer

MAX_LIMIT = 1000


class Paging(NamedTuple):
    limit: int
    offset: int


async def _paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Paging:
    return Paging(limit, offset)


Page = Annotated[Paging, Depends(_paging)]


def page(rows: list[Any], paging: Paging, response: Response) -> list[Any]:
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[paging.offset : paging.offset + paging.limit]


def paged_answer(rows: list[Any], total: int) -> Response:
    """One page already cut by the database, serialized once (``answers.json_answer``)."""
    return json_answer(rows, headers={"X-Total-Count": str(total)})
