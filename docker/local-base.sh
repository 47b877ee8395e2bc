#!/usr/bin/env bash
# Builds a local stand-in for node:20-bookworm-slim where image registries are unreachable:
# Debian 13 (debootstrap minbase) with Debian's Node.js 20, plus npm 10 from the npm registry
# (the coordinator runs `npm pack` to build the volunteer package; Debian's own npm package
# would bring 367 packages). Needs root, debootstrap and a running dockerd.
#   docker/local-base.sh [TAG]     (default arbor-base:trixie; kept while this script is unchanged)
set -euo pipefail
tag=${1:-arbor-base:trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
npm_version=10.8.2

# The image's comment names this script's hash: an image built by another version is rebuilt.
recipe="arbor local base $(sha256sum "$0" | cut -c1-16)"
if [ "$(docker image inspect -f '{{.Comment}}' "$tag" 2>/dev/null)" = "$recipe" ]; then
  echo "local-base: $tag is up to date"
  exit 0
fi

rootfs=$(mktemp -d /var/tmp/arbor-base.XXXXXX)
# A debootstrap that failed half-way may leave /proc or /sys mounted in the root.
trap 'umount "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true; rm -rf --one-file-system "$rootfs"' EXIT

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
    --message "$recipe" \
    - "$tag"
docker run --rm "$tag" sh -c 'echo "local-base: $0 has node $(node -v), npm $(npm -v)"' "$tag"
