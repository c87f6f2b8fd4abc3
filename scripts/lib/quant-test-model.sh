# Sourced by the native test scripts: writes (once) the small synthetic Q8_0 model that
# test_model runs through the packed kernels, into the build dir given as $1, and exports its
# path as EL_TEST_QUANT_MODEL. Needs the compiled TypeScript (dist/, built by `npm run build`);
# without it test_model skips that part and says so.
quant_test_model() {
  local root model
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  model="$1/test-q8_0.gguf"
  if [ ! -f "$model" ] && [ -f "$root/dist/scripts/write-synthetic-model.js" ]; then
    mkdir -p "$1"
    node "$root/dist/scripts/write-synthetic-model.js" --arch llama --type q8_0 --seed 7 --out "$model.tmp" >/dev/null
    mv "$model.tmp" "$model"
  fi
  if [ -f "$model" ]; then export EL_TEST_QUANT_MODEL="$model"; fi
}
