// Private to the tokenizers: the vocabulary as llama.cpp reads it from tokenizer.ggml.*,
// the special-token split, and the parts the SPM and BPE tokenizers share.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer.h"

namespace el {

// Token attributes (llama_token_attr), derived from tokenizer.ggml.token_type.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrRstrip = 1u << 8,  // whitespace after the token is dropped when it splits the text
};

// Defaults that depend on the tokenizer kind (and pre-tokenizer), before metadata overrides.
struct VocabDefaults {
  int32_t bos, eos, unk;
  bool add_bos, add_eos;
};

struct Vocab {
  std::vector<std::string> text;
  std::vector<float> score;
  std::vector<uint32_t> attr;
  std::unordered_map<std::string, int32_t> id_of;  // a repeated text maps to its last id
  std::vector<int32_t> special_longest_first;       // control, user-defined and unknown tokens
  std::unordered_set<int32_t> eog;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_eos = false;

  void load(const GGUFFile& f, const VocabDefaults& d);
  int32_t find(std::string_view s) const {
    auto it = id_of.find(std::string(s));
    return it == id_of.end() ? -1 : it->second;
  }

  // A piece of input text: either a special token (token >= 0) or raw text to tokenize.
  struct Fragment {
    int32_t token;
    std::string_view text;
  };
  // Splits text on the texts of special tokens, longest first. Without parse_special only
  // user-defined tokens split (control and unknown texts stay ordinary text).
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
};

// What the SPM and BPE tokenizers share; they differ in encode_text and how a normal
// token's text maps to bytes.
class VocabTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string token_to_piece(int32_t id, bool render_special) const override;
  const std::string& pre() const override { return pre_; }
  int32_t n_vocab() const override { return static_cast<int32_t>(v_.text.size()); }
  int32_t bos() const override { return v_.bos; }
  int32_t eos() const override { return v_.eos; }
  bool add_bos() const override { return v_.add_bos; }
  bool add_eos() const override { return v_.add_eos; }
  bool is_eog(int32_t id) const override { return v_.eog.count(id) > 0; }
  bool is_control(int32_t id) const override {
    return id >= 0 && id < n_vocab() && (v_.attr[id] & kAttrControl);
  }

 protected:
  // Tokenizes one raw-text fragment; `after_special` is true at the start of the input and
  // right after a special token.
  virtual void encode_text(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  virtual std::string normal_piece(const std::string& text) const = 0;

  Vocab v_;
  std::string pre_ = "default";
};

std::unique_ptr<Tokenizer> make_spm_tokenizer(const GGUFFile& f);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(const GGUFFile& f);

}  // namespace el
