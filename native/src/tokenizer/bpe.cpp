// Byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"), as llama.cpp runs it: the
// pre-tokenizer splits text into words, each word's bytes are spelled with GPT-2's
// byte-to-unicode alphabet, and adjacent symbols merge by merge rank (lowest first).
#include <array>
#include <queue>
#include <unordered_map>

#include "../error.h"
#include "pretok.h"
#include "vocab.h"
#include "unicode.h"

namespace el {
namespace {

// GPT-2's alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes map in
// order to U+0100 and up, so that every byte is a visible character.
struct ByteAlphabet {
  std::array<std::string, 256> encode;
  std::unordered_map<uint32_t, uint8_t> decode;
  ByteAlphabet() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cpt = printable ? b : next++;
      unicode::append_utf8(encode[b], cpt);
      decode[cpt] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

struct PairHash {
  size_t operator()(const std::pair<std::string, std::string>& p) const {
    return std::hash<std::string>()(p.first) * 31 + std::hash<std::string>()(p.second);
  }
};

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(const GGUFFile& f) {
    if (std::optional<std::string> p = f.get_string_opt("tokenizer.ggml.pre")) pre_ = *p;
    const PreTokenizerInfo info = pre_tokenizer_from_name(pre_);
    pre_kind_ = info.kind;
    ignore_merges_ = info.ignore_merges;
    v_.load(f, VocabDefaults{11, 11, -1, info.add_bos, false});

    if (!f.has("tokenizer.ggml.merges")) fail(ErrorKind::BadFile, f.path() + ": tokenizer.ggml.merges is missing");
    const std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
    for (size_t i = 0; i < merges.size(); ++i) {
      // "left right"; the first character is never the separator (it may be a space).
      const std::string& m = merges[i];
      const size_t sp = m.find(' ', 1);
      std::pair<std::string, std::string> key;
      if (sp != std::string::npos) key = {m.substr(0, sp), m.substr(sp + 1)};
      rank_.emplace(std::move(key), static_cast<int>(i));  // a repeated pair keeps its first rank
    }
  }
  const char* kind() const override { return "gpt2"; }

 protected:
  void encode_text(std::string_view text, bool, std::vector<int32_t>& out) const override {
    for (const std::string& word : pre_tokenize(pre_kind_, text)) {
      std::string encoded;
      for (char c : word) encoded += alphabet().encode[static_cast<uint8_t>(c)];
      merge_word(encoded, out);
    }
  }

  // Spells the token's characters back as the bytes they stand for.
  std::string normal_piece(const std::string& text) const override {
    std::string s;
    for (uint32_t cpt : unicode::decode_utf8(text)) {
      auto it = alphabet().decode.find(cpt);
      if (it != alphabet().decode.end()) {
        s += static_cast<char>(it->second);
        continue;
      }
      // Not a byte character: llama.cpp writes this marker instead.
      std::string utf8;
      unicode::append_utf8(utf8, cpt);
      s += "[UNK_BYTE_0x";
      for (char c : utf8) {
        static const char* hex = "0123456789abcdef";
        s += hex[static_cast<uint8_t>(c) >> 4];
        s += hex[static_cast<uint8_t>(c) & 15];
      }
      s += text + "]";
    }
    return s;
  }

 private:
  struct Symbol {
    int prev, next;
    size_t start, n;  // bytes of the word; n == 0 once merged into its left neighbour
  };
  struct Bigram {
    int left, right;
    int rank;
    std::string text;
    // Lowest rank first; on ties the leftmost pair.
    bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };

  void merge_word(const std::string& word, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    if (ignore_merges_ && v_.find(word) >= 0) {
      sym.push_back({-1, -1, 0, word.size()});
    } else {
      for (size_t off = 0; off < word.size();) {
        const size_t n = std::min(unicode::utf8_len(word[off]), word.size() - off);
        const int i = static_cast<int>(sym.size());
        sym.push_back({i - 1, off + n == word.size() ? -1 : i + 1, off, n});
        off += n;
      }
    }
    auto str = [&](const Symbol& s) { return word.substr(s.start, s.n); };

    std::priority_queue<Bigram> queue;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      std::pair<std::string, std::string> key{str(sym[left]), str(sym[right])};
      auto it = rank_.find(key);
      if (it != rank_.end()) queue.push({left, right, it->second, key.first + key.second});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || str(l) + str(r) != b.text) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (const Symbol& s : sym) {
      if (s.n == 0) continue;
      const std::string piece = str(s);
      const int32_t id = v_.find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      // A merge whose result is not a token: llama.cpp looks up each byte of the spelled
      // text on its own and drops those that are not tokens.
      for (char c : piece) {
        const int32_t byte_id = v_.find(std::string(1, c));
        if (byte_id >= 0) out.push_back(byte_id);
      }
    }
  }

  PreTokenizer pre_kind_ = PreTokenizer::Default;
  bool ignore_merges_ = false;
  std::unordered_map<std::pair<std::string, std::string>, int, PairHash> rank_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const GGUFFile& f) { return std::make_unique<BpeTokenizer>(f); }

}  // namespace el
