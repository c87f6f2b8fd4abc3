// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), as llama.cpp runs it:
// spaces become U+2581, then adjacent symbols merge greedily by the score of the token
// they form, and what is left over falls back to <0xXX> byte tokens.
#include <queue>

#include "../error.h"
#include "vocab.h"
#include "unicode.h"

namespace el {
namespace {

const char kSpaceMark[] = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(const GGUFFile& f) {
    v_.load(f, VocabDefaults{1, 2, 0, true, false});
    add_space_prefix_ = f.get_bool_opt("tokenizer.ggml.add_space_prefix").value_or(true);
  }
  const char* kind() const override { return "llama"; }

 protected:
  void encode_text(std::string_view raw, bool after_special, std::vector<int32_t>& out) const override {
    std::string text;
    if (add_space_prefix_ && after_special) text += kSpaceMark;
    for (char c : raw) {
      if (c == ' ') text += kSpaceMark;
      else text += c;
    }
    merge(text, out);
  }

  std::string normal_piece(const std::string& text) const override {
    std::string s;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 3, kSpaceMark) == 0) {
        s += ' ';
        i += 3;
      } else {
        s += text[i++];
      }
    }
    return s;
  }

 private:
  struct Symbol {
    int prev, next;
    size_t start, n;  // bytes of the text; n == 0 once merged into its left neighbour
  };
  struct Bigram {
    int left, right;
    float score;
    size_t size;
    // Highest score first; on ties the leftmost pair.
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };

  void merge(const std::string& text, std::vector<int32_t>& out) const {
    // One symbol per UTF-8 character (a truncated one at the end keeps what is there).
    std::vector<Symbol> sym;
    for (size_t off = 0; off < text.size();) {
      const size_t n = std::min(unicode::utf8_len(text[off]), text.size() - off);
      const int i = static_cast<int>(sym.size());
      sym.push_back({i - 1, off + n == text.size() ? -1 : i + 1, off, n});
      off += n;
    }

    std::priority_queue<Bigram> queue;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const size_t size = sym[left].n + sym[right].n;
      const int32_t id = v_.find(std::string_view(text).substr(sym[left].start, size));
      if (id >= 0) queue.push({left, right, v_.score[id], size});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale: one side changed
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    // Every merged symbol is a token (pairs are queued only when they form one), so only
    // single characters can be missing from the vocabulary: those go out byte by byte.
    for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
      const std::string_view s = std::string_view(text).substr(sym[i].start, sym[i].n);
      const int32_t id = v_.find(s);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : s) out.push_back(byte_token(static_cast<uint8_t>(c)));
    }
  }

  int32_t byte_token(uint8_t c) const {
    static const char* hex = "0123456789ABCDEF";
    const char name[7] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>', 0};
    int32_t id = v_.find(name);
    if (id < 0) id = v_.find(std::string(1, static_cast<char>(c)));
    if (id < 0) fail(ErrorKind::InvalidArgument, std::string("the vocabulary has no token for byte ") + name);
    return id;
  }

  bool add_space_prefix_ = true;
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(const GGUFFile& f) { return std::make_unique<SpmTokenizer>(f); }

}  // namespace el
