#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run linters and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh "[test]" .venv-test
bash scripts/postgres.sh
bash scripts/containers.sh  # podman, buildah, skopeo, registry, the cached base image tarball
bash scripts/ceph.sh  # Ceph's RADOS Gateway, the real S3 store of tests/server/test_artifacts_s3.py
bash scripts/chromium.sh  # Debian's chromium for the web UI's browser tests
bash scripts/git.sh  # git and git daemon: build contexts given as git URLs
# Debian's Python 3.11 beside the machine's own: a lock must install on another patch release.
if [ ! -x /usr/bin/python3.11 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 >/dev/null
fi
export KILN_TEST_POSTGRES_URL='postgresql+psycopg://kiln_test:${KILN_TEST_PGPASSWORD}@127.0.0.1:5432/postgres'
export KILN_TEST_PGPASSWORD='kiln-test-only'
export PATH="$PWD/.venv-test/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy
lint-imports --no-cache  # the layers and no package cycles: pyproject.toml [tool.importlinter]
pytest -n 2 "$@"
