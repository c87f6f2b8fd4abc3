// GGUF reader fuzz target: any bytes as a GGUF file, then what the engine does with one: the
// metadata accessors, the tokenizer from its metadata, the LoRA shapes, a LoRA adapter open, and
// a full model load (hyperparameters, weights placed) on the scalar kernel path.
#include "fuzz_common.h"
#include "error.h"
#include "gguf.h"
#include "kernels/kernels.h"
#include "lora/lora_source.h"
#include "model.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  std::unique_ptr<el::GGUFFile> g;
  try {
    g = el::GGUFFile::open(f.path());
  } catch (const el::Error&) {
    return 0;
  }
  uint32_t sink = 0;
  for (const auto& [key, v] : g->metadata()) {
    sink += uint32_t(key.size() + v.str.size() + v.arr_str.size());
    if (v.type == el::GGUFType::ARRAY && v.arr_data) sink += fuzz::touch(v.arr_data, size_t(v.arr_n));
  }
  for (const el::GGUFTensor& t : g->tensors()) sink += fuzz::touch(t.data, t.nbytes);
  try { el::Tokenizer::from_gguf(*g); } catch (const el::Error&) {}
  try { el::lora::shapes_from_gguf(*g); } catch (const el::Error&) {}
  try { el::lora::open_adapter(f.path(), fuzz::seed_model_shapes(), 64); } catch (const el::Error&) {}
  try { el::Model::load(f.path(), el::kernels::scalar()); } catch (const el::Error&) {}
  return int(sink & 0);
}
