#!/usr/bin/env bash
# `npm test` step: the native tests cross-built for aarch64 and run under qemu (NEON paths),
# when the cross compiler and qemu-user are installed (.ci/run installs them); else a notice.
set -euo pipefail
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  exec "$(dirname "$0")/ci-native-arm.sh"
fi
echo "test:arm: skipped (install g++-aarch64-linux-gnu and qemu-user to run the NEON tests under emulation)"
