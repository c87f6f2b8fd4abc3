#!/usr/bin/env bash
# `npm test` step: the native C++ tests (ctest) of the host build, with the quantized test model.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/quant-test-model.sh"
quant_test_model "$root/build/native"
exec ctest --test-dir "$root/build/native" --output-on-failure
