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

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/el-fuzz-st-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  g_dir = tmpl;
  const std::string config = "{\"r\": 2, \"lora_alpha\": 4}";
  fuzz::write_file(g_dir + "/adapter_config.json", config.data(), config.size());
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
  fuzz::write_file(g_dir + "/adapter_model.safetensors", data, size);
  try {
    el::lora::open_adapter(g_dir, fuzz::seed_model_shapes(), 8);
  } catch (const el::Error&) {
  }
  return 0;
}
