#!/usr/bin/env bash
# Install Kiln into .venv and walk through the quickstart on the embedded default workspace
# (SQLite in a folder): scaffold, register, change, register again, list, show, diff, hash,
# then build it, run a command in it and export its lock. Builds go to a cache in the demo folder.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh ""
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
