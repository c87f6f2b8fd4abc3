// Tokenizer fuzz target: any bytes in, no crash, for the SentencePiece and both byte-level BPE
// tokenizers (llama-bpe and qwen2 pre-tokenizers; vocabularies in native/fuzz/vocab). The first
// byte picks the tokenizer and the add_special / parse_special flags; the rest is the text. The
// ids must be in range, and detokenizing them must not crash either.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "error.h"
#include "gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<el::GGUFFile>> g_files;
std::vector<std::unique_ptr<el::Tokenizer>> g_toks;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (const char* name : {"spm.gguf", "bpe-llama.gguf", "bpe-qwen2.gguf"}) {
    const std::string path = fuzz::data_dir() + "/" + name;
    try {
      g_files.push_back(el::GGUFFile::open(path));
      g_toks.push_back(el::Tokenizer::from_gguf(*g_files.back()));
    } catch (const el::Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const el::Tokenizer& tok = *g_toks[data[0] % g_toks.size()];
  const bool add_special = data[0] & 4, parse_special = data[0] & 8;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.n_vocab()) std::abort();
  (void)tok.decode(ids, data[0] & 16);
  return 0;
}
