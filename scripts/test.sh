#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run linters and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check "uv>=0.4"
[ -x .venv/bin/python ] || python3 -m uv venv --quiet --python 3.11 .venv 2>/dev/null || python3 -m uv venv --quiet .venv
python3 -m uv pip install --quiet --python .venv/bin/python -e ".[test]"
bash scripts/postgres.sh
export KILN_TEST_POSTGRES_URL='postgresql+psycopg://kiln_test:${KILN_TEST_PGPASSWORD}@127.0.0.1:5432/postgres'
export KILN_TEST_PGPASSWORD='kiln-test-only'
export PATH="$PWD/.venv/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy
pytest -n 2 "$@"
