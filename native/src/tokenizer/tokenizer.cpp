#include "tokenizer.h"

#include "../error.h"
#include "vocab.h"

namespace el {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GGUFFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "llama") return make_spm_tokenizer(f);
  if (model == "gpt2") return make_bpe_tokenizer(f);
  fail(ErrorKind::Unsupported, f.path() + ": unsupported tokenizer.ggml.model '" + model + "' (llama and gpt2 are)");
}

// Plain concatenation of the pieces: nothing is stripped or cleaned up, so decoding a
// stream token by token gives the same bytes as decoding it whole.
std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string s;
  for (int32_t id : ids) s += token_to_piece(id, render_special);
  return s;
}

}  // namespace el
