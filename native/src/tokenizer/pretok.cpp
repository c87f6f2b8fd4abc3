#include "pretok.h"

#include <cstdint>
#include <functional>

#include "../error.h"
#include "unicode.h"

namespace el {
namespace {

using unicode::Category;

enum : uint8_t { kLetter = 1, kNumber = 2, kSpace = 4 };

struct Text {
  std::vector<uint32_t> cpts;
  std::vector<uint8_t> cls;  // kLetter | kNumber | kSpace per code point
};

// One piece [ini, end) of the text under a regex. Like the regex, the helpers see nothing
// outside it: positions past the end are neither letters, digits, spaces nor characters.
struct Chunk {
  const Text& t;
  size_t ini, end;
  bool in(size_t p) const { return p >= ini && p < end; }
  uint32_t cpt(size_t p) const { return in(p) ? t.cpts[p] : 0xFFFFFFFFu; }
  bool letter(size_t p) const { return in(p) && (t.cls[p] & kLetter); }
  bool number(size_t p) const { return in(p) && (t.cls[p] & kNumber); }
  bool space(size_t p) const { return in(p) && (t.cls[p] & kSpace); }
  // [^\s\p{L}\p{N}]
  bool other(size_t p) const { return in(p) && !(t.cls[p] & (kLetter | kNumber | kSpace)); }
};

// Collects word lengths (in code points); empty words are dropped.
struct Words {
  std::vector<size_t>& out;
  size_t prev;
  void cut(size_t end) {
    if (end > prev) out.push_back(end - prev);
    prev = end;
  }
};

using ChunkSplitter = std::function<void(const Chunk&, Words&)>;

std::vector<size_t> split_each(const Text& t, const std::vector<size_t>& chunks, const ChunkSplitter& f) {
  std::vector<size_t> out;
  size_t start = 0;
  for (size_t len : chunks) {
    Chunk ch{t, start, start + len};
    Words w{out, start};
    f(ch, w);
    w.cut(ch.end);
    start += len;
  }
  return out;
}

// 's|'t|'re|'ve|'m|'ll|'d, ASCII-case-insensitive when `fold` (no other code point
// lowercases to these letters; scripts/gen-unicode-tables.ts checks it). Returns its length or 0.
size_t contraction(const Chunk& ch, size_t pos, bool fold) {
  if (ch.cpt(pos) != '\'' || pos + 1 >= ch.end) return 0;
  auto low = [fold](uint32_t c) { return fold && c >= 'A' && c <= 'Z' ? c + 32 : c; };
  const uint32_t a = low(ch.cpt(pos + 1));
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= ch.end) return 0;
  const uint32_t b = low(ch.cpt(pos + 2));
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Whitespace alternatives at pos: \s*[\r\n]+ (when `newlines`), \s+(?!\S), \s+.
// Returns the end of the match, or pos + 1 when nothing matches.
size_t whitespace_end(const Chunk& ch, size_t pos, bool newlines) {
  size_t n = 0, last_newline_end = 0;
  while (ch.space(pos + n)) {
    const uint32_t c = ch.cpt(pos + n);
    if (newlines && (c == '\r' || c == '\n')) last_newline_end = pos + n + 1;
    n++;
  }
  if (last_newline_end > 0) return last_newline_end;
  if (n > 1 && ch.in(pos + n)) return pos + n - 1;  // leave the last space to the next word
  return n > 0 ? pos + n : pos + 1;
}

void split_gpt2(const Chunk& ch, Words& w) {
  for (size_t pos = ch.ini; pos < ch.end;) {
    if (size_t n = contraction(ch, pos, false)) {
      w.cut(pos += n);
      continue;
    }
    const size_t p2 = ch.cpt(pos) == ' ' ? pos + 1 : pos;  // optional leading space
    if (ch.letter(p2) || ch.number(p2) || ch.other(p2)) {
      const bool letter = ch.letter(p2), number = ch.number(p2);
      pos = p2;
      while (letter ? ch.letter(pos) : number ? ch.number(pos) : ch.other(pos)) pos++;
      w.cut(pos);
      continue;
    }
    w.cut(pos = whitespace_end(ch, pos, false));
  }
}

// Llama 3 (max_digits 3) and Qwen2 (max_digits 1).
void split_llama3_like(const Chunk& ch, Words& w, size_t max_digits) {
  for (size_t pos = ch.ini; pos < ch.end;) {
    if (size_t n = contraction(ch, pos, true)) {
      w.cut(pos += n);
      continue;
    }
    const uint32_t c = ch.cpt(pos);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(c == '\r' || c == '\n' || ch.number(pos)) && (ch.letter(pos) || ch.letter(pos + 1))) {
      pos++;
      while (ch.letter(pos)) pos++;
      w.cut(pos);
      continue;
    }
    // \p{N}{1,max_digits}
    if (ch.number(pos)) {
      size_t ini = pos;
      while (ch.number(pos)) {
        if (++pos - ini >= max_digits) {
          w.cut(pos);
          ini = pos;
        }
      }
      w.cut(pos);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'; a lone space at the chunk's end also lands here.
    const size_t p2 = c == ' ' ? pos + 1 : pos;
    if (!ch.in(p2) || ch.other(p2)) {
      pos = p2;
      while (ch.other(pos)) pos++;
      while (ch.cpt(pos) == '\r' || ch.cpt(pos) == '\n') pos++;
      w.cut(pos);
      continue;
    }
    w.cut(pos = whitespace_end(ch, pos, true));
  }
}

// Splits into the runs of code points that satisfy `match` (one word per run) and the gaps
// between them: a regex of the form [class]+ applied as llama.cpp applies std::regex.
void split_runs(const Chunk& ch, Words& w, const std::function<bool(uint32_t)>& match) {
  for (size_t pos = ch.ini; pos < ch.end;) {
    if (!match(ch.cpt(pos))) {
      pos++;
      continue;
    }
    w.cut(pos);
    while (pos < ch.end && match(ch.cpt(pos))) pos++;
    w.cut(pos);
  }
}

bool is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }

// [0-9][0-9][0-9], left to right.
void split_digit_triples(const Chunk& ch, Words& w) {
  for (size_t pos = ch.ini; pos < ch.end;) {
    if (pos + 3 <= ch.end && is_ascii_digit(ch.cpt(pos)) && is_ascii_digit(ch.cpt(pos + 1)) &&
        is_ascii_digit(ch.cpt(pos + 2))) {
      w.cut(pos);
      w.cut(pos += 3);
    } else {
      pos++;
    }
  }
}

// llama.cpp runs [\p{P}\$\+<=>\^~\|]+ and \p{N}+ through std::regex over a copy of the text
// in which ASCII stays itself and every other code point becomes one byte for its category
// (whitespace first); so outside ASCII only these exact categories match.
bool default_punct(uint32_t c) {
  if (c < 128) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x5F) || (c >= 0x7B && c <= 0x7E);
  return !unicode::is_whitespace(c) && unicode::category(c) == Category::Punctuation;
}
bool default_number(uint32_t c) {
  if (c < 128) return is_ascii_digit(c);
  return !unicode::is_whitespace(c) && unicode::category(c) == Category::Number;
}

}  // namespace

PreTokenizerInfo pre_tokenizer_from_name(const std::string& name) {
  auto any = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) if (name == n) return true;
    return false;
  };
  if (name.empty() || name == "default") return {PreTokenizer::Default, false, false};
  if (any({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"}))
    return {PreTokenizer::Llama3, true, true};
  if (any({"dbrx", "smaug-bpe"})) return {PreTokenizer::Llama3, false, false};
  if (any({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"}))
    return {PreTokenizer::Qwen2, false, false};
  if (any({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
           "modern-bert", "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling"}))
    return {PreTokenizer::Gpt2, false, false};
  fail(ErrorKind::Unsupported, "unsupported pre-tokenizer tokenizer.ggml.pre = '" + name +
                                   "' (supported: default and the llama3 / llama-bpe, qwen2 and gpt-2 families of llama.cpp)");
}

std::vector<std::string> pre_tokenize(PreTokenizer pre, std::string_view utf8) {
  Text t;
  t.cpts = unicode::decode_utf8(utf8);
  t.cls.resize(t.cpts.size());
  for (size_t i = 0; i < t.cpts.size(); ++i) {
    const uint32_t c = t.cpts[i];
    const Category cat = unicode::category(c);
    t.cls[i] = (cat == Category::Letter ? kLetter : 0) | (cat == Category::Number ? kNumber : 0) |
               (unicode::is_whitespace(c) ? kSpace : 0);
  }

  std::vector<size_t> words{t.cpts.size()};
  switch (pre) {
    case PreTokenizer::Default:
      words = split_each(t, words, [](const Chunk& ch, Words& w) { split_runs(ch, w, default_punct); });
      words = split_each(t, words, split_gpt2);
      words = split_each(t, words, [](const Chunk& ch, Words& w) { split_runs(ch, w, default_number); });
      words = split_each(t, words, split_digit_triples);
      break;
    case PreTokenizer::Gpt2:
      words = split_each(t, words, split_gpt2);
      break;
    case PreTokenizer::Llama3:
      words = split_each(t, words, [](const Chunk& ch, Words& w) { split_llama3_like(ch, w, 3); });
      break;
    case PreTokenizer::Qwen2:
      words = split_each(t, words, [](const Chunk& ch, Words& w) { split_llama3_like(ch, w, 1); });
      break;
  }

  std::vector<std::string> out;
  out.reserve(words.size());
  size_t start = 0;
  for (size_t len : words) {
    std::string& s = out.emplace_back();
    for (size_t i = start; i < start + len; ++i) unicode::append_utf8(s, t.cpts[i]);
    start += len;
  }
  return out;
}

}  // namespace el
