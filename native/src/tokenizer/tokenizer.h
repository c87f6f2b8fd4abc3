// Tokenizers built from GGUF metadata (tokenizer.ggml.*):
//   "llama": SentencePiece-style (scores, leading-space prefix, byte fallback <0xXX>),
//   "gpt2":  byte-level BPE (merges, byte-to-unicode mapping) with the pre-tokenizer
//            regexes named by tokenizer.ggml.pre (llama-bpe / llama3, qwen2, default gpt2).
// Results match llama.cpp's tokenizer for the same file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../gguf.h"

namespace el {

class Tokenizer {
 public:
  // Throws el::Error when the metadata is missing or inconsistent.
  static std::unique_ptr<Tokenizer> from_gguf(const GGUFFile& f);
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS (and append EOS) as the metadata says (add_bos_token /
  //   add_eos_token, with llama.cpp's defaults per tokenizer kind).
  // parse_special: text equal to a control/user-defined token's text becomes that token;
  //   otherwise such text is tokenized as ordinary characters.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // The bytes a token stands for (may be a partial UTF-8 sequence). Control tokens render
  // as empty unless render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  virtual const char* kind() const = 0;   // "llama" | "gpt2"
  virtual const std::string& pre() const = 0;  // pre-tokenizer name ("default" when unset)
  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 when none
  virtual int32_t eos() const = 0;  // -1 when none
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  // End of generation: EOS, EOT, and other end-of-turn tokens the metadata marks.
  virtual bool is_eog(int32_t id) const = 0;
  virtual bool is_control(int32_t id) const = 0;
};

}  // namespace el
