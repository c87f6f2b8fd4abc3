// Pre-tokenizers of byte-level BPE vocabularies: the regex split that runs before the BPE
// merges, hand-written per known pattern (the way llama.cpp's unicode.cpp does it).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace el {

enum class PreTokenizer {
  Default,  // tokenizer.ggml.pre absent or "default": llama.cpp's four-regex fallback
  Gpt2,     // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  Llama3,   // (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Qwen2,    // as Llama3 with \p{N} (one digit per word)
};

// What a tokenizer.ggml.pre name implies, as llama.cpp reads it.
struct PreTokenizerInfo {
  PreTokenizer kind = PreTokenizer::Default;
  bool ignore_merges = false;  // a word that is itself a token skips the merges
  bool add_bos = false;        // default of tokenizer.ggml.add_bos_token
};

// Throws el::Error (Unsupported) for names this engine does not implement.
PreTokenizerInfo pre_tokenizer_from_name(const std::string& name);

// Splits UTF-8 text into words. Invalid UTF-8 bytes come back as U+FFFD.
std::vector<std::string> pre_tokenize(PreTokenizer pre, std::string_view text);

}  // namespace el
