#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "../error.h"
#include "vocab.h"

namespace el {
namespace {

// llama.cpp recognises these texts whatever the metadata says: they end generation, and a
// token carrying one is treated as a control token.
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
};
// End-of-turn candidates (a subset of kEogTexts), used when tokenizer.ggml.eot_token_id is absent.
const char* const kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>",
};
// Fill-in-the-middle tokens: recognised by text when their id is not in the metadata; those
// found become control tokens, and pad / repo / file-separator also end generation.
struct FimKind {
  const char* key;
  std::vector<const char*> texts;
  bool eog;
};
const FimKind kFimKinds[] = {
    {"tokenizer.ggml.fim_pre_token_id",
     {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
      "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"}, false},
    {"tokenizer.ggml.fim_suf_token_id",
     {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
      "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"}, false},
    {"tokenizer.ggml.fim_mid_token_id",
     {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
      "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"}, false},
    {"tokenizer.ggml.fim_pad_token_id", {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}, true},
    {"tokenizer.ggml.fim_rep_token_id",
     {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}, true},
    {"tokenizer.ggml.fim_sep_token_id", {"<|file_sep|>"}, true},
};

uint32_t attr_of_type(int64_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

}  // namespace

void Vocab::load(const GGUFFile& f, const VocabDefaults& d) {
  text = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = text.size();
  if (n == 0) fail(ErrorKind::BadFile, f.path() + ": tokenizer.ggml.tokens is empty");

  score.assign(n, 0.0f);
  if (f.has("tokenizer.ggml.scores")) {
    std::vector<float> s = f.get_float_array("tokenizer.ggml.scores");
    if (s.size() < n) fail(ErrorKind::BadFile, f.path() + ": tokenizer.ggml.scores has fewer entries than tokens");
    std::copy(s.begin(), s.begin() + n, score.begin());
  }
  attr.assign(n, kAttrNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    std::vector<int64_t> t = f.get_int_array("tokenizer.ggml.token_type");
    if (t.size() < n) fail(ErrorKind::BadFile, f.path() + ": tokenizer.ggml.token_type has fewer entries than tokens");
    for (size_t i = 0; i < n; ++i) attr[i] = attr_of_type(t[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (text[i].empty()) text[i] = "[EMPTY_" + std::to_string(i) + "]";
    id_of[text[i]] = static_cast<int32_t>(i);
  }

  // Special ids: the kind's default unless out of range, then the metadata when in range.
  auto read_id = [&](const char* key, int32_t fallback) {
    int32_t id = fallback >= 0 && size_t(fallback) < n ? fallback : -1;
    std::optional<int64_t> v = f.get_int_opt(key);
    if (v && *v >= 0 && size_t(*v) < n) id = static_cast<int32_t>(*v);
    return id;
  };
  bos = read_id("tokenizer.ggml.bos_token_id", d.bos);
  eos = read_id("tokenizer.ggml.eos_token_id", d.eos);
  unk = read_id("tokenizer.ggml.unknown_token_id", d.unk);
  int32_t eot = read_id("tokenizer.ggml.eot_token_id", -1);
  int32_t eom = read_id("tokenizer.ggml.eom_token_id", -1);
  add_bos = f.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(d.add_bos);
  add_eos = f.get_bool_opt("tokenizer.ggml.add_eos_token").value_or(d.add_eos);

  auto first_with_text = [&](auto begin, auto end) {
    for (auto it = begin; it != end; ++it) {
      int32_t id = find(*it);
      if (id >= 0) return id;
    }
    return -1;
  };
  auto make_control = [&](int32_t id) { attr[id] |= kAttrControl; };
  if (eot < 0 && (eot = first_with_text(std::begin(kEotTexts), std::end(kEotTexts))) >= 0) make_control(eot);
  if (eom < 0 && (eom = find("<|eom_id|>")) >= 0) make_control(eom);
  for (const FimKind& k : kFimKinds) {
    int32_t id = read_id(k.key, -1);
    if (id < 0 && (id = first_with_text(k.texts.begin(), k.texts.end())) >= 0) make_control(id);
    if (id >= 0 && k.eog) eog.insert(id);
  }
  for (const char* t : kEogTexts) {
    int32_t id = find(t);
    if (id < 0) continue;
    eog.insert(id);
    make_control(id);
  }
  for (int32_t id : {eos, eot, eom}) {
    if (id >= 0) eog.insert(id);
  }

  for (size_t i = 0; i < n; ++i) {
    if (attr[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_longest_first.push_back(int32_t(i));
  }
  std::stable_sort(special_longest_first.begin(), special_longest_first.end(),
                   [&](int32_t a, int32_t b) { return text[a].size() > text[b].size(); });

  // As llama.cpp (per-token attributes it sets by model name): Phi-3's special tokens, and
  // </s>, drop the whitespace after them; <unk>, <s> and <|endoftext|> do not.
  std::string name = f.get_string_opt("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_longest_first) attr[id] |= kAttrRstrip;
    if (int32_t id = find("</s>"); id >= 0) attr[id] |= kAttrRstrip;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
      if (int32_t id = find(t); id >= 0) attr[id] &= ~uint32_t(kAttrRstrip);
  }
}

std::vector<Vocab::Fragment> Vocab::partition(std::string_view input, bool parse_special) const {
  std::vector<Fragment> frags;
  if (!input.empty()) frags.push_back({-1, input});
  for (int32_t id : special_longest_first) {
    if (!parse_special && (attr[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = text[id];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      std::string_view rest = fr.text;
      for (size_t at; (at = rest.find(needle)) != std::string_view::npos;) {
        if (at > 0) next.push_back({-1, rest.substr(0, at)});
        next.push_back({id, {}});
        rest.remove_prefix(at + needle.size());
        if (attr[id] & kAttrRstrip)
          while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && v_.add_bos) {
    if (v_.bos < 0) fail(ErrorKind::InvalidArgument, "the vocabulary asks for a BOS token but has none");
    out.push_back(v_.bos);
  }
  bool after_special = true;
  for (const Vocab::Fragment& fr : v_.partition(text, parse_special)) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      after_special = true;
    } else {
      encode_text(fr.text, after_special, out);
      after_special = false;
    }
  }
  if (add_special && v_.add_eos) {
    if (v_.eos < 0) fail(ErrorKind::InvalidArgument, "the vocabulary asks for an EOS token but has none");
    out.push_back(v_.eos);
  }
  return out;
}

std::string VocabTokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) fail(ErrorKind::InvalidArgument, "token id " + std::to_string(id) + " is out of range");
  const uint32_t a = v_.attr[id];
  const std::string& text = v_.text[id];
  if (a & (kAttrControl | kAttrUnknown)) return render_special ? text : std::string();
  if (a & kAttrUserDefined) return text;
  if (a & kAttrNormal) return normal_piece(text);
  if (a & kAttrByte) {
    // "<0xXX>"
    if (text.size() < 5) return std::string();
    return std::string(1, static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16)));
  }
  return std::string();  // unused and undefined tokens
}

}  // namespace el
