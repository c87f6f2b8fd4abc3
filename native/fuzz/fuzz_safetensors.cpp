// safetensors reader fuzz target: any bytes as an adapter_model.safetensors; every tensor it
// accepts must lie inside the file.
#include "fuzz_common.h"
#include "error.h"
#include "lora/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  try {
    auto st = el::lora::SafetensorsFile::open(f.path());
    uint32_t sink = 0;
    for (const el::lora::SafeTensor& t : st->tensors()) sink += fuzz::touch(t.data, t.nbytes);
    (void)sink;
  } catch (const el::Error&) {
  }
  return 0;
}
