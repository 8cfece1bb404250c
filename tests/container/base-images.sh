#!/usr/bin/env bash
# Makes the base images deploy/Dockerfile names (debian:bookworm, debian:bookworm-slim) without
# a registry: debootstrap --variant=minbase from Debian's mirror, imported into buildah's local
# storage under both names. Our "slim" is the same minbase rootfs with docs/man/locales removed
# (close to Docker Hub's bookworm-slim). Cached: the rootfs tarball is kept in
# $QUORUMQ_CONTAINER_CACHE (default /var/cache/quorumq-container) and images already in buildah
# storage are reused. Usage: base-images.sh [--force]
set -euo pipefail
CACHE=${QUORUMQ_CONTAINER_CACHE:-/var/cache/quorumq-container}
MIRROR=${QUORUMQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=0; [ "${1:-}" = --force ] && FORCE=1
have() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if [ $FORCE = 0 ] && have docker.io/library/debian:bookworm && have docker.io/library/debian:bookworm-slim; then
  echo "base-images: debian:bookworm and debian:bookworm-slim already in buildah storage"
  exit 0
fi
mkdir -p "$CACHE"
tarball=$CACHE/bookworm-minbase.tar
if [ $FORCE = 1 ] || [ ! -s "$tarball" ]; then
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  echo "base-images: debootstrap --variant=minbase bookworm from $MIRROR (about a minute)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # As Docker's debian images do: apt must not keep downloaded .debs, and the image is not a
  # booted system (no policy-rc.d start of daemons during apt-get install).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/99quorumq-no-recommends"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
fi

import() {  # import TAG [slim]
  local ctr mnt
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$mnt" --numeric-owner -xf "$tarball"
  if [ "${2:-}" = slim ]; then
    rm -rf "$mnt"/usr/share/doc/* "$mnt"/usr/share/man/* "$mnt"/usr/share/info/* "$mnt"/usr/share/locale/*
  fi
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$ctr"
  buildah commit --quiet --rm "$ctr" "$1" >/dev/null
  echo "base-images: made $1"
}
import docker.io/library/debian:bookworm
import docker.io/library/debian:bookworm-slim slim
