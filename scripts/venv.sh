# Sourced by quickstart.sh and test.sh: make the virtualenv $2 (default .venv) and install Kiln
# into it with the extras in $1 ("" or "[test]"). The tests use their own (.venv-test), so a
# test run never reinstalls under a `kiln` command the quickstart's .venv is running. A
# virtualenv first: Debian's own python3 refuses system-wide pip installs (PEP 668), and a
# fresh Debian may lack the venv module.
venv="${2:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
fi
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$venv/bin/python" -m ensurepip --upgrade >/dev/null
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv>=0.6,<1"
"$venv/bin/python" -m uv pip install --quiet --python "$venv/bin/python" -e ".${1:-}"
