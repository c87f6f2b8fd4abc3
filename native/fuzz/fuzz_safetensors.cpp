// safetensors reader fuzz target: any bytes as an adapter_model.safetensors; every tensor it
// accepts must lie inside the file. Then the same bytes as the weights of a PEFT folder (with a
// fixed adapter_config.json) opened against a small llama model: tensor names parsed into
// modules, shapes checked, q/k rows reordered.
#include <cstdio>
#include <string>

#include "fuzz_common.h"
#include "error.h"
#include "lora/lora_source.h"
#include "lora/safetensors.h"

namespace {

std::string g_dir;

void write_file(const std::string& path, const void* data, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}

// The shapes of the seed adapter's model (scripts/fuzz-seeds.ts: 32 wide, ffn 64, 2 heads / 1 KV).
el::lora::ModelShapes shapes() {
  el::lora::ModelShapes s;
  s.arch = "llama";
  s.n_layer = 1;
  s.n_head = 2;
  s.n_head_kv = 1;
  const int64_t n_in[el::lora::kNumModules] = {32, 32, 32, 32, 32, 32, 64};
  const int64_t n_out[el::lora::kNumModules] = {32, 16, 16, 32, 64, 64, 32};
  for (int m = 0; m < el::lora::kNumModules; ++m) s.n_in[m] = n_in[m], s.n_out[m] = n_out[m];
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/el-fuzz-st-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  g_dir = tmpl;
  const std::string config = "{\"r\": 2, \"lora_alpha\": 4}";
  write_file(g_dir + "/adapter_config.json", config.data(), config.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  try {
    auto st = el::lora::SafetensorsFile::open(f.path());
    uint32_t sink = 0;
    for (const el::lora::SafeTensor& t : st->tensors()) sink += fuzz::touch(t.data, t.nbytes);
    (void)sink;
  } catch (const el::Error&) {
    return 0;
  }
  write_file(g_dir + "/adapter_model.safetensors", data, size);
  try {
    el::lora::open_adapter(g_dir, shapes(), 8);
  } catch (const el::Error&) {
  }
  return 0;
}
