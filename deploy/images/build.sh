#!/usr/bin/env bash
# Builds every image Courier's deployment tests and deploy/compose.yaml use,
# with nothing pulled from a registry:
#
#   courier-base:bookworm   Debian bookworm (minbase + ca-certificates) made by
#                           debootstrap from the machine's Debian mirror and
#                           `docker import`ed; the root tarball is cached.
#   courier-workspace:dev   the agent's boot recipe (cmd/courier-agent/boot/
#                           Dockerfile) on that base: bash, user coder.
#   courier-server:dev      the control plane FROM scratch: static binary,
#                           CA certificates, numeric non-root user, /data.
#   courier-postgres:dev    Debian's PostgreSQL on the base.
#   courier-haproxy:dev     Debian's haproxy on the base.
#
# Usage: deploy/images/build.sh [image ...]   (default: all of them)
# Environment: COURIER_IMAGE_CACHE (default /var/cache/courier-images) keeps
# the debootstrap tarball between runs; COURIER_DEBIAN_MIRROR overrides the
# mirror read from /etc/apt/sources.list*. Needs root (debootstrap) and a
# Docker engine. apt-get inside `docker build` uses the host's network
# (--network host): the mirror is the only thing reached.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${COURIER_IMAGE_CACHE:-/var/cache/courier-images}"
suite=bookworm
base=courier-base:$suite
# Every image built here carries this label, so the old ones a rebuild
# leaves untagged can be removed without touching anyone else's.
label=org.courier.build=deploy-images
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"

log() { echo "build.sh: $*" >&2; }

mirror() {
  if [ -n "${COURIER_DEBIAN_MIRROR:-}" ]; then echo "$COURIER_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# base makes (or reuses) the debootstrap tarball and imports it once; the
# image carries the tarball's checksum as a label, so an unchanged tarball
# is not imported again and docker's build cache keeps every later layer.
build_base() {
  mkdir -p "$cache"
  local tar="$cache/$suite-minbase.tar"
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
    local root
    root=$(mktemp -d "$cache/root.XXXXXX")
    log "debootstrap $suite from $(mirror) (about 40 s)"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$(mirror)" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; rm -rf "$root"; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar --numeric-owner -C "$root" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  local sum
  sum=$(sha256sum "$tar" | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "org.courier.rootfs"}}' "$base" 2>/dev/null)" != "$sum" ]; then
    log "docker import $tar as $base"
    docker import --change "LABEL org.courier.rootfs=$sum" --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
  fi
}

# ctx makes a small build context: only what an image copies.
ctx() { local d; d=$(mktemp -d); echo "$d"; }

gobuild() { # gobuild OUT PKG
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$1" "$2")
}

build_workspace() {
  local d; d=$(ctx)
  gobuild "$d/courier-agent" ./cmd/courier-agent
  mkdir -p "$d/cmd/courier-agent/boot/profile.d"
  cp "$repo/cmd/courier-agent/boot/entrypoint.sh" "$d/cmd/courier-agent/boot/"
  cp "$repo/cmd/courier-agent/boot/profile.d/courier-env.sh" "$d/cmd/courier-agent/boot/profile.d/"
  docker build -q --network host --label "$label" --build-arg "BASE_IMAGE=$base" -t courier-workspace:dev \
    -f "$repo/cmd/courier-agent/boot/Dockerfile" "$d" >/dev/null
  rm -rf "$d"
}

build_server() {
  local d; d=$(ctx)
  gobuild "$d/courier" ./cmd/courier
  docker build -q --label "$label" --build-arg "BASE_IMAGE=$base" -t courier-server:dev -f "$repo/deploy/images/server/Dockerfile" "$d" >/dev/null
  rm -rf "$d"
}

build_debian() { # build_debian NAME
  docker build -q --network host --label "$label" --build-arg "BASE_IMAGE=$base" -t "courier-$1:dev" "$repo/deploy/images/$1" >/dev/null
}

images=("$@")
[ "${#images[@]}" -gt 0 ] || images=(workspace server postgres haproxy)
start=$(date +%s)
build_base
for img in "${images[@]}"; do
  t=$(date +%s)
  case "$img" in
    workspace) build_workspace ;;
    server) build_server ;;
    postgres|haproxy) build_debian "$img" ;;
    *) log "unknown image $img (workspace, server, postgres, haproxy)"; exit 2 ;;
  esac
  log "courier-$img:dev built in $(( $(date +%s) - t )) s, $(docker image inspect -f '{{.Size}}' "courier-$img:dev") bytes"
done
docker image prune -f --filter "label=$label" >/dev/null
log "all done in $(( $(date +%s) - start )) s"
