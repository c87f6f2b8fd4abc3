// Tokenizer tests: unicode classes, pre-tokenizer splits, and stories260K's SentencePiece
// vocabulary against ids llama.cpp produces (ORACLE.md). Parity over a large corpus and the
// BPE vocabularies is checked from TypeScript (test/tokenizer-parity.test.ts).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"

using el::PreTokenizer;
using el::unicode::Category;

static void test_unicode() {
  using namespace el::unicode;
  CHECK(category('a') == Category::Letter);
  CHECK(category('7') == Category::Number);
  CHECK(category('!') == Category::Punctuation);
  CHECK(category('$') == Category::Symbol);
  CHECK(category(' ') == Category::Separator);
  CHECK(category('\n') == Category::Control);
  CHECK(category(0x4E2D) == Category::Letter);       // 中
  CHECK(category(0x0301) == Category::Mark);         // combining acute
  CHECK(category(0x00BD) == Category::Number);       // ½
  CHECK(category(0x20AC) == Category::Symbol);       // €
  CHECK(category(0x1F642) == Category::Symbol);      // 🙂
  CHECK(category(0x0378) == Category::Undefined);    // unassigned
  CHECK(category(0x10FFFF) == Category::Undefined);  // noncharacter
  CHECK(category(0x110000) == Category::Undefined);
  CHECK(is_whitespace(' ') && is_whitespace('\t') && is_whitespace(0x85) && is_whitespace(0x3000));
  CHECK(!is_whitespace('x') && !is_whitespace(0xFEFF) && !is_whitespace(0x200B));

  CHECK((decode_utf8("a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x99\x82") == std::vector<uint32_t>{'a', 0xE9, 0x4E2D, 0x1F642}));
  CHECK((decode_utf8("\xff" "a\xc3") == std::vector<uint32_t>{0xFFFD, 'a', 0xFFFD}));
  std::string s;
  for (uint32_t c : {0x41u, 0xE9u, 0x4E2Du, 0x1F642u}) append_utf8(s, c);
  CHECK(s == "A\xc3\xa9\xe4\xb8\xad\xf0\x9f\x99\x82");
}

static void check_split(PreTokenizer pre, const std::string& text, const std::vector<std::string>& want) {
  const std::vector<std::string> got = el::pre_tokenize(pre, text);
  std::string shown;
  for (const auto& w : got) shown += "[" + w + "]";
  CHECK_MSG(got == want, "split of '%s' gave %s", text.c_str(), shown.c_str());
}

static void test_pre_tokenizers() {
  // Expected splits follow the regexes in tokenizer/pretok.h.
  check_split(PreTokenizer::Llama3, "Hello world's 1234567!!\n\n  x",
              {"Hello", " world", "'s", " ", "123", "456", "7", "!!\n\n", " ", " x"});
  check_split(PreTokenizer::Llama3, "I'LL go", {"I", "'LL", " go"});
  check_split(PreTokenizer::Llama3, "a  \n b", {"a", "  \n", " b"});
  check_split(PreTokenizer::Llama3, "(x) end ", {"(x", ")", " end", " "});
  check_split(PreTokenizer::Qwen2, "abc 123 x", {"abc", " ", "1", "2", "3", " x"});
  check_split(PreTokenizer::Gpt2, "Hello world's 123  !?", {"Hello", " world", "'s", " 123", " ", " !?"});
  check_split(PreTokenizer::Gpt2, "I'LL", {"I", "'", "LL"});  // case-sensitive contractions
  check_split(PreTokenizer::Default, "a+b=12345", {"a", "+", "b", "=", "123", "45"});
  check_split(PreTokenizer::Llama3, "", {});

  CHECK(el::pre_tokenizer_from_name("llama-bpe").kind == PreTokenizer::Llama3);
  CHECK(el::pre_tokenizer_from_name("llama-bpe").add_bos);
  CHECK(el::pre_tokenizer_from_name("qwen2").kind == PreTokenizer::Qwen2);
  CHECK(el::pre_tokenizer_from_name("").kind == PreTokenizer::Default);
  CHECK(el::pre_tokenizer_from_name("gpt-2").kind == PreTokenizer::Gpt2);
  bool threw = false;
  try {
    el::pre_tokenizer_from_name("no-such-pre");
  } catch (const el::Error& e) {
    threw = e.kind == el::ErrorKind::Unsupported;
  }
  CHECK(threw);
}

static void test_stories260k() {
  const std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (!std::ifstream(path)) {
    std::fprintf(stderr, "skip stories260K checks: %s not found\n", path.c_str());
    return;
  }
  auto f = el::GGUFFile::open(path);
  auto tok = el::Tokenizer::from_gguf(*f);
  CHECK(std::string(tok->kind()) == "llama");
  CHECK(tok->n_vocab() == 512);
  CHECK(tok->bos() == 1 && tok->eos() == 2);
  CHECK(tok->add_bos() && !tok->add_eos());
  CHECK(tok->is_eog(2) && !tok->is_eog(1) && !tok->is_eog(403));
  CHECK(tok->is_control(1) && !tok->is_control(403));

  // Ids from llama.cpp (ORACLE.md).
  CHECK((tok->encode("Once upon a time", false, false) == std::vector<int32_t>{403, 407, 261, 378}));
  CHECK((tok->encode("Once upon a time", true, false) == std::vector<int32_t>{1, 403, 407, 261, 378}));
  CHECK((tok->encode("Hello world!", false, false) == std::vector<int32_t>{346, 306, 414, 263, 304, 341, 443}));
  const std::vector<int32_t> tab_nl = tok->encode("a\tb\nc", false, false);
  CHECK(tab_nl.size() == 5 && tab_nl[1] == 12 && tab_nl[3] == 13);  // <0x09>, <0x0A>

  CHECK(tok->encode("", false, false).empty());
  CHECK((tok->encode("", true, false) == std::vector<int32_t>{1}));
  // Control text becomes the control token only when parsing special tokens.
  CHECK((tok->encode("<s>", false, true) == std::vector<int32_t>{1}));
  CHECK(tok->encode("<s>", false, false).size() > 1);

  // Pieces: the space mark becomes a space, byte tokens give their byte, control tokens are empty.
  CHECK(tok->token_to_piece(403) == " Once");
  CHECK(tok->token_to_piece(13) == "\n");
  CHECK(tok->token_to_piece(1).empty() && tok->token_to_piece(1, true) == "<s>");
  for (const char* s : {"Once upon a time", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x99\x82\ttab\n", "  two  spaces"}) {
    CHECK_MSG(tok->decode(tok->encode(s, false, false)) == std::string(" ") + s, "round trip of '%s'", s);
  }
}

int main() {
  test_unicode();
  test_pre_tokenizers();
  test_stories260k();
  return el_test::test_exit_code();
}
