#!/usr/bin/env bash
# Stages the images' build context in docker/build, so that `docker build` itself needs no
# network: the coordinator's sources with the production dependencies (`npm ci --omit=dev`),
# and the volunteer package the coordinator serves (self-contained: it installs nothing more). Native addons (better-sqlite3) are built here against this host's Node.js: run it on
# Linux x86-64 with Node.js 20 and a glibc no newer than the base image's.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docker/build
rm -rf "$out"
mkdir -p "$out/coordinator" "$out/worker"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

cp -R package.json package-lock.json tsconfig.json bin bench cli coordinator packaging proto shared worker \
  "$out/coordinator/"
(cd "$out/coordinator" && npm ci --omit=dev)
# The root's optional dependencies (native TensorFlow, where it installed at all) stay out:
# the images run the same everywhere. GPU volunteers have the worker-gpu target.
node -p "Object.keys(require('./package.json').optionalDependencies ?? {}).join('\n')" |
  while read -r name; do rm -rf "$out/coordinator/node_modules/$name"; done

node --import tsx --input-type=module -e "
  import { writeFileSync } from 'node:fs';
  import { buildWorkerPackage } from './packaging/worker-package.ts';
  writeFileSync('$out/worker/arbor-worker.tgz', (await buildWorkerPackage()).bytes);
"
echo '{ "private": true }' >"$out/worker/package.json"
(cd "$out/worker" && npm install --omit=dev ./arbor-worker.tgz)

# Source maps are two thirds of TensorFlow.js's size and nothing at run time reads them.
find "$out/coordinator/node_modules" "$out/worker/node_modules" -name '*.map' -type f -delete
# So are TensorFlow.js's browser bundles: Node.js loads each package's dist/*.node.js.
find "$out"/*/node_modules/@tensorflow/*/dist -maxdepth 1 -type f \
  \( -name '*.min.js' -o -name '*.es2017.js' -o -name '*.fesm.js' -o -name '*.html' \) -delete
for umd in "$out"/*/node_modules/@tensorflow/*/dist/*.node.js; do rm -f "${umd%.node.js}.js"; done
rm -rf "$out"/*/node_modules/@tensorflow/tfjs/dist/miniprogram
# better-sqlite3 needs its addon at run time, not SQLite's sources nor the compiler's objects.
sqlite=$out/coordinator/node_modules/better-sqlite3
mv "$sqlite/build/Release/better_sqlite3.node" "$out/better_sqlite3.node"
rm -rf "$sqlite/build" "$sqlite/deps" "$sqlite/src"
mkdir -p "$sqlite/build/Release"
mv "$out/better_sqlite3.node" "$sqlite/build/Release/"
# The compiled copy of the CLI that bin/arbor.js starts (the image's /opt/arbor is read-only
# to its user, so it could not be made there; COPY keeps the files' times, which key it).
(cd "$out/coordinator" && node bin/arbor.js --version >/dev/null)
cp docker/healthcheck.mjs "$out/"
du -sh "$out/coordinator" "$out/worker"
