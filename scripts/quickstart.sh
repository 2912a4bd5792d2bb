#!/usr/bin/env bash
# Install Kiln into .venv and walk through the quickstart on the embedded default workspace
# (SQLite in a folder): scaffold, register, change, register again, list, show, diff, hash,
# then build it, run a command in it and export its lock. Builds go to a cache in the demo folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# A virtualenv first: Debian's own python3 refuses system-wide pip installs (PEP 668).
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
fi
.venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.6,<1"
.venv/bin/python -m uv pip install --quiet --python .venv/bin/python -e "."
kiln="$PWD/.venv/bin/kiln"
demo=$(mktemp -d "${TMPDIR:-/tmp}/kiln-quickstart-XXXXXX")
cd "$demo"
export KILN_CACHE_DIR="$demo/cache"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$kiln" init .
step "$kiln" env scaffold -n train -d train-env
step cat train-env/kiln.yaml
step "$kiln" env register -d train-env
step "$kiln" env register -d train-env                  # same content: same version
sed -i 's/    - numpy==2.4.6/    - numpy==2.4.6\n    - scikit-learn==1.9.1/' train-env/kiln.yaml
step "$kiln" env register -d train-env                  # changed: next version
step "$kiln" env list
step "$kiln" env show train
step "$kiln" env diff train:1 train:2
step "$kiln" env hash -d train-env
step "$kiln" env lint train
step "$kiln" env build train                            # resolves, locks, builds once
step "$kiln" env build train                            # instant: same build hash, same lock
step "$kiln" env exec train -- python -c "import sklearn, numpy; print('scikit-learn', sklearn.__version__, 'numpy', numpy.__version__)"
step "$kiln" env lock train --format requirements
step "$kiln" cache list
printf '\nThe quickstart workspace is in %s\n' "$demo"
