#!/usr/bin/env bash
# Installs Node-RED (a pinned 4.x, which runs on Node 20) into build/node-red/ once, for the test
# of the shipped flows (test/node-red/flows.test.ts, which skips while it is absent). A separate
# folder: Node-RED and its few hundred packages stay out of the project's own dependencies.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=4.1.8
dir="$root/build/node-red"
if [ -f "$dir/node_modules/node-red/package.json" ] &&
  [ "$(node -p "require('$dir/node_modules/node-red/package.json').version")" = "$version" ]; then
  exit 0
fi
mkdir -p "$dir"
echo "node-red: installing node-red@$version into build/node-red"
[ -f "$dir/package.json" ] || echo '{"private":true}' > "$dir/package.json"
npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --loglevel=error "node-red@$version"
