#!/usr/bin/env bash
# `npm run prebuild`: the addon for linux-x64 (the host build) and linux-arm64 (cross-compiled),
# stripped, into prebuilds/<platform>-<arch>/edgelora.node, which `npm pack` ships. Both are built
# for the lowest CPU of their family (x86-64, ARMv8-A): the SIMD kernels sit in files of their own
# and are chosen at run time by CPU detection. The loader (src/engine/addon-path.ts) uses the
# prebuilt that matches; the package's install script builds from source when none does.
# npm would also run a script named "prebuild" before "build" as its pre-hook; the project's
# .npmrc (ignore-scripts=true) turns such hooks off, so only `npm run prebuild` runs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

[ "$(uname -m)" = x86_64 ] || { echo "prebuild: run on an x86-64 Linux host (it cross-compiles arm64)" >&2; exit 1; }

npm run --silent build:native
bash scripts/build-arm64.sh

place() { # place <built addon> <platform-arch> <strip tool>
  mkdir -p "prebuilds/$2"
  "$3" --strip-unneeded -o "prebuilds/$2/edgelora.node" "$1"
  echo "prebuild: prebuilds/$2/edgelora.node ($(du -k "prebuilds/$2/edgelora.node" | cut -f1) KiB)"
}
place build/native/Release/edgelora.node linux-x64 strip
place build/native-arm64/Release/edgelora.node linux-arm64 aarch64-linux-gnu-strip
