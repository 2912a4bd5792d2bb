"""The floor under any FastAPI server on this machine: one route answering a constant, served by
uvicorn as ``kiln server`` is (same loop, HTTP parser, no access log). bench/server.py measures it
beside Kiln so the get goal can be judged against what the framework itself reaches here."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
ANSWER = {"name": "env-0001", "version": "5"}


@app.get("/hello")
async def hello() -> dict[str, str]:
    return ANSWER
