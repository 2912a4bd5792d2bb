"""``kiln server``: the team server, one FastAPI application on uvicorn.

A face like the CLI: every route parses, calls the same core function the CLI calls, and
returns a public schema. Only this package imports FastAPI, Starlette or uvicorn (an
import-linter contract), so the core and the CLI run without the ``server`` extra.
"""
