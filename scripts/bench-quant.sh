#!/usr/bin/env bash
# `npm run bench:quant`: one-thread decode GEMV rate per weight type, cached and streamed, on the
# host build's kernel path (a benchmark, not a test). Extra arguments go to the benchmark
# (e.g. --path avx2, --types q5_0,q4_K).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/bench-results"
stamp="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
exec "$root/build/native/bench_quant_dots" --json "$root/bench-results/quant-dots-$stamp.json" "$@"
