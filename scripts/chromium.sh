#!/usr/bin/env bash
# Debian's chromium for the web UI's browser tests (tests/ui), driven by Playwright's Python
# package with executable_path=/usr/bin/chromium: `playwright install` cannot download here.
# Idempotent: does nothing when chromium is there already.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium.sh: /usr/bin/chromium is missing; run this script as root to install it" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
