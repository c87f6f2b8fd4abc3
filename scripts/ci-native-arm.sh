#!/usr/bin/env bash
# Cross-builds the native C++ tests for aarch64 and runs them under qemu-user: all tests
# with the default CPU model (max: has ASIMDDP, so neon-dotprod is picked), then the kernel
# tests again as a Cortex-A72 (no dot product) so the baseline NEON paths run too.
# Needs: g++-aarch64-linux-gnu qemu-user (apt). The Node addon is not built.
# Usage: scripts/ci-native-arm.sh [test targets...]   (default: every native test)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/native-arm"
jobs="${JOBS:-2}"

cmake -S "$root" -B "$build" \
  -DCMAKE_TOOLCHAIN_FILE="$root/native/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DEL_BUILD_TESTS=ON

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd "$root/native/tests" && ls test_*.cpp | sed 's/\.cpp$//')
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
if [ "$#" -eq 0 ]; then
  # The kernel benchmarks are meant for the board: build them too, so they always compile there.
  mapfile -t benches < <(cd "$root/native/bench" && ls bench_*.cpp | sed 's/\.cpp$//')
  cmake --build "$build" -j "$jobs" --target "${benches[@]}"
fi

source "$root/scripts/lib/quant-test-model.sh"
quant_test_model "$build"

# ctest runs each test through CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64).
regex="^($(IFS='|'; echo "${targets[*]}"))$"
(cd "$build" && ctest --output-on-failure -R "$regex")

# The kernel tests again as a Cortex-A72 (no dot product), so the baseline NEON paths run too.
for t in test_kernels test_lora_q8; do
  if [[ " ${targets[*]} " == *" $t "* ]]; then
    echo "== $t on cortex-a72 (baseline NEON, no dotprod)"
    QEMU_CPU=cortex-a72 qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/$t"
  fi
done
