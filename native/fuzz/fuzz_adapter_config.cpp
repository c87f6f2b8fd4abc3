// adapter_config.json / JSON parser fuzz target: any bytes through the JSON reader, then as the
// adapter_config.json of a PEFT folder (next to a fixed valid adapter_model.safetensors) opened
// against a small llama model, which reads every key the loader knows (r, lora_alpha, target
// modules as a list or a regular expression, rank/alpha patterns, ...).
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "fuzz_common.h"
#include "error.h"
#include "lora/json.h"
#include "lora/lora_source.h"

namespace {

std::string g_dir;

// One q_proj pair of rank 2 on a 4-wide model, F32.
void write_safetensors(const std::string& path) {
  const std::string header =
      "{\"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]},"
      "\"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[32,64]}}";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((n >> (8 * i)) & 0xff);
  bytes += header;
  bytes += std::string(64, '\0');
  fuzz::write_file(path, bytes.data(), bytes.size());
}

el::lora::ModelShapes shapes() {
  el::lora::ModelShapes s;
  s.arch = "llama";
  s.n_layer = 1;
  s.n_head = 1;
  s.n_head_kv = 1;
  for (int m = 0; m < el::lora::kNumModules; ++m) s.n_in[m] = s.n_out[m] = 4;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/el-fuzz-peft-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  g_dir = tmpl;
  write_safetensors(g_dir + "/adapter_model.safetensors");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    el::lora::json::parse(reinterpret_cast<const char*>(data), size, "fuzz");
  } catch (const el::Error&) {
  }
  fuzz::write_file(g_dir + "/adapter_config.json", data, size);
  try {
    el::lora::open_adapter(g_dir, shapes(), 8);
  } catch (const el::Error&) {
  }
  return 0;
}
