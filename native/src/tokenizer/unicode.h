// UTF-8 and code-point classes for the tokenizers (the \p{..} and \s of pre-tokenizer regexes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace el::unicode {

// General category groups, numbered as in the generated tables (unicode_data.cpp).
enum class Category : uint8_t {
  Undefined = 0,   // Cn (unassigned)
  Number = 1,      // \p{N}
  Letter = 2,      // \p{L}
  Separator = 3,   // \p{Z}
  Mark = 4,        // \p{M}
  Punctuation = 5, // \p{P}
  Symbol = 6,      // \p{S}
  Control = 7,     // \p{C} other than Cn
};

Category category(uint32_t cpt);   // Undefined beyond U+10FFFF
bool is_whitespace(uint32_t cpt);  // \s (White_Space)

// Length of the UTF-8 sequence that starts with byte `c`, judged by its high bits only
// (a stray continuation byte counts as 1), as llama.cpp splits text into symbols.
size_t utf8_len(char c);

// Decodes UTF-8; each byte that does not start a valid sequence becomes U+FFFD.
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cpt);

}  // namespace el::unicode
