#!/usr/bin/env bash
# `npm run fuzz -- [--minutes N | --seconds N | --runs N] [--fork N] [--targets a,b] [--no-build]`:
# builds the libFuzzer targets of native/fuzz with clang (ASan + UBSan, build/fuzz), writes fresh
# seeds, and runs each target for the time given (default 1 minute), or for N executions, on one
# core, one after the other; --fork N runs each target in N worker processes at once (libFuzzer's
# fork mode: one corpus, executions summed; out-of-memory and timeouts still fail). Corpora grow in
# build/fuzz/corpus/<target>; a crash input is copied to native/fuzz/regressions/<target>/ (which
# ctest runs in the regular build) and fails the run. Prints executions, coverage and crashes per
# target, and writes them to bench-results/fuzz-<date>.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=60
targets="fuzz_gguf,fuzz_safetensors,fuzz_adapter_config,fuzz_tokenizer"
build=1
runs=0
fork=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --fork) fork=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "fuzz: unknown option $1 (--minutes N | --seconds N | --runs N | --fork N | --targets a,b | --no-build)" >&2; exit 2 ;;
  esac
done
command -v clang++ >/dev/null || { echo "fuzz: clang++ is needed (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

out="$root/build/fuzz"
if [ "$build" = 1 ]; then
  mkdir -p "$out"
  CC=clang CXX=clang++ cmake -S "$root" -B "$out" -G Ninja -DEL_FUZZ=ON -DEL_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$out" -j 2 -- ${targets//,/ } >/dev/null
fi
# One seeds folder per invocation, so that several targets may be fuzzed at once (one per core).
seeds="$out/seeds.$$"
rm -rf "$seeds"
trap 'rm -rf "$seeds"' EXIT
node "$root/dist/scripts/fuzz-seeds.js" --out "$seeds"

results=()
failed=0
printf '%-22s %10s %10s %8s %8s %8s %s\n' target seconds execs exec/s cov ft crashes
for t in ${targets//,/ }; do
  corpus="$out/corpus/$t"
  artifacts="$out/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  log="$out/$t.log"
  started=$(date +%s)
  # --runs: a number of executions instead of a time.
  limit=(-max_total_time="$seconds")
  [ "$runs" = 0 ] || limit=(-runs="$runs")
  # Fork mode ignores out-of-memory and timeouts unless told not to.
  [ "$fork" = 0 ] || limit+=(-fork="$fork" -ignore_ooms=0 -ignore_timeouts=0)
  set +e
  # -rss_limit_mb: the engine may map and copy a model the input describes; 2 GB is the most a
  # small board would give it. -timeout: one input may not take more than 10 s.
  "$out/$t" "$corpus" "$seeds/$t" "$root/native/fuzz/regressions/$t" "${limit[@]}" -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # A run that found a crash prints no "Done ... runs" line: every figure may be missing.
  # Fork mode: the parent's "#<executions>: cov: ..." lines sum its workers (a crashing worker's
  # own stat lines count that worker only).
  if [ "$fork" = 0 ]; then
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  else
    execs=$(grep -oE '^#[0-9]+: cov:' "$log" | grep -oE '[0-9]+' | tail -1 || true)
  fi
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' | tail -1 || true)
  [ -n "$secs" ] || secs=$(( $(date +%s) - started ))
  [ -n "$execs" ] || execs=0
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  crashes=0
  for a in "$artifacts"*; do
    [ -f "$a" ] || continue
    crashes=$((crashes + 1))
    cp "$a" "$root/native/fuzz/regressions/$t/"
  done
  [ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes="exit $rc"
  [ "$crashes" = 0 ] || failed=1
  execs=${execs:-0}; secs=${secs:-$seconds}
  printf '%-22s %10s %10s %8s %8s %8s %s\n' "$t" "$secs" "$execs" "$(( execs / (secs > 0 ? secs : 1) ))" "${cov:-?}" "${ft:-?}" "$crashes"
  results+=("{\"target\":\"$t\",\"seconds\":$secs,\"executions\":$execs,\"coverage_edges\":${cov:-null},\"features\":${ft:-null},\"crashes\":\"$crashes\",\"log\":\"$log\"}")
done
mkdir -p "$root/bench-results"
json="$root/bench-results/fuzz-$(date -u +%Y-%m-%dT%H-%M-%SZ).json"
( IFS=,; printf '{"date":"%s","cpu":"%s","seconds_per_target":%s,"runs_per_target":%s,"fork_workers":%s,"sanitizers":"address,undefined","targets":[%s]}\n' \
  "$(date -u +%FT%TZ)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$seconds" "$runs" "$fork" "${results[*]}" ) >"$json"
echo "wrote $json" >&2
if [ "$failed" = 1 ]; then
  echo "fuzz: crashes found; their inputs are in native/fuzz/regressions/<target>/ (logs: $out/<target>.log)" >&2
  exit 1
fi
