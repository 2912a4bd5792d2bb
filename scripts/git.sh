#!/usr/bin/env bash
# git, with `git daemon` (Debian's git package ships it): build contexts given as git URLs are
# fetched with git, and their tests serve repositories with a real git daemon on 127.0.0.1.
# Idempotent: does nothing when git and its daemon are there already.
set -euo pipefail
if command -v git >/dev/null && [ -x "$(git --exec-path)/git-daemon" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "git.sh: git (with git-daemon) is missing; run this script as root to install it" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
