#!/usr/bin/env bash
# Install Kiln into .venv and walk through the quickstart on the embedded default workspace
# (SQLite in a folder): scaffold, register, change, register again, list, show, diff, hash,
# then build it, run a command in it and export its lock; build it as an image when a container
# engine is here; train a scikit-learn model in it as a
# run and look at the run's metrics and outputs; register the model and serve it with a score.py
# in the same environment, answer one request, and leave the service running (the last line
# says how to stop it). Builds go to a cache in the demo folder.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh ""
kiln="$PWD/.venv/bin/kiln"
python="$PWD/.venv/bin/python"
demo=$(mktemp -d "${TMPDIR:-/tmp}/kiln-quickstart-XXXXXX")
cd "$demo"
export KILN_CACHE_DIR="$demo/cache"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$kiln" init .
step "$kiln" env scaffold -n train -d train-env
step cat train-env/kiln.yaml
step "$kiln" env register -d train-env
step "$kiln" env register -d train-env                  # same content: same version
# Add scikit-learn to the definition, as a user would in an editor:
step sed -i 's/    - numpy==2.4.6/    - numpy==2.4.6\n    - scikit-learn==1.9.1/' train-env/kiln.yaml
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
# The same environment as an OCI image, where a container engine and a base image with Python
# are here (KILN_BASE_IMAGE, else the Debian base that scripts/containers.sh makes for tests).
base="${KILN_BASE_IMAGE:-localhost/kiln-test/debian-python:bookworm-v1}"
if command -v podman >/dev/null && { [ -n "${KILN_BASE_IMAGE:-}" ] || podman image exists "$base" 2>/dev/null; }; then
  export KILN_BASE_IMAGE="$base"
  step "$kiln" image build train                        # uv in the base image, one reproducible layer
  step "$kiln" image show train
else
  printf '\n(no container engine or no base image %s: images skipped; `kiln doctor` says what is missing)\n' "$base"
fi

mkdir -p train-src
cat > train-src/train.py <<'PY'
"""Train a small classifier; log its accuracy; save the model to ./outputs."""
import pickle, sys
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from kiln import Run

run = Run.get_context()
c = float(sys.argv[sys.argv.index("--C") + 1]) if "--C" in sys.argv else 1.0
X_train, X_test, y_train, y_test = train_test_split(*load_iris(return_X_y=True), random_state=0)
model = LogisticRegression(C=c, max_iter=500).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
run.log("C", c)
run.log("accuracy", accuracy)
Path("outputs").mkdir(exist_ok=True)
Path("outputs/model.pkl").write_bytes(pickle.dumps(model))
print(f"accuracy {accuracy:.3f} with C={c}")
PY
step cat train-src/train.py
step "$kiln" run submit --env train -e iris -d train-src train.py -- --C 0.5
run_id=$("$kiln" run list -e iris --json | "$python" -c "import json, sys; print(json.load(sys.stdin)[0]['runId'])")
step "$kiln" run list
step "$kiln" run show "$run_id"
step "$kiln" run download "$run_id" -d run-files
step "$kiln" env show train --runs

step "$kiln" model register -n iris -p outputs/model.pkl --run "$run_id"
mkdir -p serve-src
cat > serve-src/score.py <<'PY'
"""Azure ML's scoring contract: init() once per worker, run(raw_data) per request."""
import json, os, pickle

def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as handle:
        model = pickle.load(handle)

def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()
PY
step cat serve-src/score.py
step "$kiln" deploy create -n iris --model iris:1 --entry-script score.py -d serve-src --env train
# One request through the SDK (a fresh machine may have no curl; `curl -d JSON URI` works too).
step "$python" -c "from kiln import Webservice, Workspace; print(Webservice(Workspace('.'), 'iris').run({'data': [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}))"
step "$kiln" deploy list
printf '\nThe service keeps running; stop it with:\n  KILN_WORKSPACE=%s %s deploy delete iris\n' "$demo" "$kiln"
printf '\nThe quickstart workspace (registry, builds, runs, models) is in %s;\n' "$demo"
printf 'after stopping the service, remove it all with:\n  rm -rf %s\n' "$demo"
