#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run linters and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# A virtualenv first: Debian's own python3 refuses system-wide pip installs (PEP 668).
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
fi
.venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.6,<1"
.venv/bin/python -m uv pip install --quiet --python .venv/bin/python -e ".[test]"
bash scripts/postgres.sh
export KILN_TEST_POSTGRES_URL='postgresql+psycopg://kiln_test:${KILN_TEST_PGPASSWORD}@127.0.0.1:5432/postgres'
export KILN_TEST_PGPASSWORD='kiln-test-only'
export PATH="$PWD/.venv/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy
pytest -n 2 "$@"
