#!/usr/bin/env bash
# `npm run bench:peak`: this CPU's int8 dot-product and F32 FMA peaks (register-resident, 1 and 2
# threads) and the engine's batched Q4_0 GEMM as a share of them (a benchmark, not a test).
# Extra arguments go to the benchmark (e.g. --tokens 8,16,32, --threads 1, --paths avx512-vnni,avx2-vnni).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/bench-results"
stamp="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
exec "$root/build/native/bench_peak" --json "$root/bench-results/peak-$stamp.json" "$@"
