#!/usr/bin/env bash
# Ceph's RADOS Gateway from Debian's packages, a real S3 server for the artifact store's tests
# (machine.md, "Object storage"). Only installs: the tests start one node on loopback per session
# (tests/kilntesting/cephrgw.py) and stop it at the end. Idempotent; as non-root it only says what
# is missing.
set -euo pipefail
PACKAGES=(ceph-mon ceph-osd ceph-common radosgw)
missing=()
for pkg in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "ceph.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  exit 1
fi
echo "ceph.sh: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
