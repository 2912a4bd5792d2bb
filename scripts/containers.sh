#!/usr/bin/env bash
# The container engine and the base image the image tests use (machine.md, "Containers"):
#  1. podman, buildah, skopeo, runc, docker-registry, debootstrap and umoci from Debian;
#  2. the two engine settings this kind of machine needs (ulimits under the hard limits, runc),
#     without clobbering an administrator's own /etc/containers/containers.conf;
#  3. a trimmed Debian bookworm + python3 rootfs tarball, built once with debootstrap and cached
#     in $KILN_TEST_CACHE (default /var/cache/kiln-test) beside a JSON file recording its Python;
#  4. the proof: the tarball imported and `podman run --rm IMAGE true`.
# Idempotent, and about a second when everything is already there. As non-root it only says
# what is missing. KILN_CONTAINERS_ETC overrides /etc/containers (for the configuration's test).
set -euo pipefail

# Bump when the recipe below changes: the tarball's name changes, so every machine rebuilds it.
# tests/kilntesting/images.py reads this line.
BASE_VERSION=v1
PACKAGES=(podman buildah skopeo runc docker-registry debootstrap umoci)
CACHE=${KILN_TEST_CACHE:-/var/cache/kiln-test}
ETC=${KILN_CONTAINERS_ETC:-/etc/containers}
NAME=debian-python-bookworm-$BASE_VERSION
TARBALL=$CACHE/$NAME.tar
META=$CACHE/$NAME.json
IMAGE=localhost/kiln-test/debian-python:bookworm-$BASE_VERSION

missing_packages() {
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || echo "$pkg"
  done
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086
  echo "containers.sh: installing" $missing >&2
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

# The settings podman and buildah need here: ulimits at most the hard limits, and runc (crun
# rejects this machine's cgroup layout).
engine_settings() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  printf '# Written by kiln scripts/containers.sh (machine.md, "Containers").\n'
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc"
  printf '[engine]\nruntime = "runc"\n'
}

write_if_changed() {  # write_if_changed FILE: stdin to FILE, atomically, only when it differs
  local file=$1 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$file"; then rm -f "$tmp"; else chmod 644 "$tmp" && mv -f "$tmp" "$file"; fi
}

configure_engine() {
  local conf=$ETC/containers.conf
  mkdir -p "$ETC"
  if [ ! -e "$conf" ]; then
    engine_settings | write_if_changed "$conf"
  elif grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf" \
    && grep -Eq '^[[:space:]]*runtime[[:space:]]*=' "$conf"; then
    :  # the administrator's own file already has both settings: leave it
  else
    # Drop-ins are read after containers.conf (podman 4.3 reads containers.conf.d; verified).
    mkdir -p "$ETC/containers.conf.d"
    engine_settings | write_if_changed "$ETC/containers.conf.d/50-kiln-test.conf"
  fi
}

# The machine's own Debian mirror for bookworm (deb822 .sources or one-line .list files).
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  awk '
    function flush() { if (uri != "" && bookworm) { print uri; found = 1; exit } uri = ""; bookworm = 0 }
    FNR == 1 { flush() }
    /^deb[ \t]/ { for (i = 2; i < NF; i++) if ($i ~ /:\/\//) { if ($(i+1) == "bookworm") { print $i; found = 1; exit } break } }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") bookworm = 1 }
    /^[ \t]*$/ { flush() }
    END { if (!found) flush() }
  ' "${files[@]}" | head -1
}

trim_rootfs() {  # apt lists and caches, docs, man pages, locales except C: the image stays small
  local root=$1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -type d ! -name 'C' ! -name 'C.*' \
    -exec rm -rf {} + 2>/dev/null || true
}

build_base_tarball() {
  local mirror work python
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { echo "containers.sh: no bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }
  mkdir -p "$CACHE"
  # One build at a time; a build killed earlier left only its work folder, never the tarball.
  exec 9>"$CACHE/.build.lock"
  flock 9
  if [ -s "$TARBALL" ] && [ -s "$META" ]; then return 0; fi  # built meanwhile by another run
  rm -rf "$CACHE"/.build-"$NAME".*
  work=$(mktemp -d "$CACHE/.build-$NAME.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "containers.sh: debootstrap bookworm from $mirror (about a minute)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  trim_rootfs "$work/root"
  python=$(chroot "$work/root" python3 -c 'import platform; print(platform.python_version())')
  # A sorted tar with numeric owners: the same rootfs gives the same bytes.
  tar --sort=name --numeric-owner -C "$work/root" -cf "$work/$NAME.tar" .
  printf '{"python_version": "%s", "suite": "bookworm", "mirror": "%s", "tarball_sha256": "%s"}\n' \
    "$python" "$mirror" "$(sha256sum "$work/$NAME.tar" | cut -d' ' -f1)" >"$work/$NAME.json"
  # The metadata first, the tarball last: a tarball under its final name is always complete.
  mv -f "$work/$NAME.json" "$META"
  mv -f "$work/$NAME.tar" "$TARBALL"
  rm -rf "$work"
  trap - EXIT
}

remove_stale_tarballs() {  # earlier recipes' tarballs (and the hand-made untrimmed one)
  local f
  for f in "$CACHE"/debian-python-bookworm*.tar "$CACHE"/debian-python-bookworm*.json; do
    [ -e "$f" ] || continue
    case "$f" in "$TARBALL" | "$META") ;; *) rm -f "$f" ;; esac
  done
}

import_and_run() {
  local sha label previous
  sha=$(sed -E 's/.*"tarball_sha256": "([0-9a-f]+)".*/\1/' "$META")
  label=$(podman image inspect --format '{{index .Labels "kiln.test.tarball-sha256"}}' "$IMAGE" 2>/dev/null || true)
  if [ "$label" != "$sha" ]; then
    previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    podman import --quiet --change "LABEL kiln.test.tarball-sha256=$sha" "$TARBALL" "$IMAGE" >/dev/null
    # The image of an earlier tarball, now untagged (kept if a container still uses it).
    [ -n "$previous" ] && { podman rmi "$previous" >/dev/null 2>&1 || true; }
  fi
  podman run --rm "$IMAGE" true
}

main() {
  if [ "$(id -u)" != 0 ]; then
    local missing
    missing=$(missing_packages)
    # shellcheck disable=SC2086
    [ -n "$missing" ] && echo "containers.sh: not root; install:" $missing "(apt-get install -y)" >&2
    [ -s "$TARBALL" ] || echo "containers.sh: not root; run it as root to build $TARBALL" >&2
    return 0
  fi
  install_packages
  configure_engine
  [ "${1:-}" = --config-only ] && return 0
  { [ -s "$TARBALL" ] && [ -s "$META" ]; } || build_base_tarball
  remove_stale_tarballs
  import_and_run
}

main "$@"
