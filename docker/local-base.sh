#!/usr/bin/env bash
# Builds a local stand-in for node:20-bookworm-slim where image registries are unreachable:
# Debian 13 (debootstrap minbase) with Debian's Node.js 20, plus npm 10 from the npm registry
# (the coordinator runs `npm pack` to build the volunteer package; Debian's own npm package
# would bring 367 packages). Needs root, debootstrap and a running dockerd.
#   docker/local-base.sh [TAG]     (default arbor-base:trixie; an existing TAG is kept)
set -euo pipefail
tag=${1:-arbor-base:trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
npm_version=10.8.2

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "local-base: $tag exists; docker rmi it to rebuild"
  exit 0
fi

rootfs=$(mktemp -d /var/tmp/arbor-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase --include=nodejs,ca-certificates trixie "$rootfs" "$mirror"
npm install --global --prefix "$rootfs/usr/local" --no-audit --no-fund "npm@$npm_version"

# What an image needs no copy of: downloaded .debs, package lists, docs, the host's identity.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log \
  "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf

tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
  -C "$rootfs" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["node"]' \
    --message "debootstrap minbase trixie + nodejs + npm@$npm_version" \
    - "$tag"
docker run --rm "$tag" sh -c 'echo "local-base: $0 has node $(node -v), npm $(npm -v)"' "$tag"
