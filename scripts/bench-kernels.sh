#!/usr/bin/env bash
# `npm run bench:kernels`: native kernel benchmarks of the host build (a benchmark, not a test).
# Extra arguments go to the benchmark (e.g. --path avx2, --mib 512).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/bench-results"
stamp="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
exec "$root/build/native/bench_lora_streams" --json "$root/bench-results/lora-streams-$stamp.json" "$@"
