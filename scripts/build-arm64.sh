#!/usr/bin/env bash
# `npm run build:arm64`: the Node addon cross-compiled for linux-arm64 (Raspberry Pi 4/5) with the
# aarch64 toolchain, into build/native-arm64/Release/edgelora.node, beside the host's build/native.
# cmake-js builds against the Node-API headers of the node-api-headers package (napi_versions in
# package.json), so nothing is downloaded. Kernels are chosen at run time (NEON, NEON + dot product).
# Needs: g++-aarch64-linux-gnu (apt).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
  echo "build:arm64: aarch64-linux-gnu-g++ is missing (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi
exec npx cmake-js compile --out build/native-arm64 -p "${JOBS:-2}" --arch arm64 \
  --CDCMAKE_TOOLCHAIN_FILE="$root/native/cmake/aarch64-linux-gnu.cmake" \
  --CDEL_BUILD_TESTS=OFF
