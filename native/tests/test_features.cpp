// The routing features of the C API on stories260K: el_embed (mean-pooled hidden states of a
// partial or full pass) and el_token_logprobs (log-likelihood of given text under mixed
// adapters), checked against plain decodes, alone and packed into shared passes.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "edgelora.h"
#include "lora_fixtures.h"
#include "engine_handles.h"

namespace {

using lora_fixtures::gguf_of;
using lora_fixtures::random_adapter;
using lora_fixtures::serialize;
using lora_fixtures::write_file;

std::string g_dir;

el_context* make_ctx(el_model* m, int n_seq, int n_batch, int lora_slots = 0) {
  el_context_params p = el_context_default_params();
  p.n_threads = 1;
  p.n_ctx = 128;
  p.n_seq_max = n_seq;
  p.n_batch_max = n_batch;
  p.kv_type = EL_KV_F32;
  p.lora_slots = lora_slots;
  p.lora_max_rank = lora_slots ? 8 : 0;
  el_context* c = nullptr;
  el_error err;
  CHECK_MSG(el_context_new(m, &p, &c, &err) == EL_OK, "%s", err.message);
  return c;
}

std::vector<int32_t> tokenize(el_model* m, const std::string& text) {
  std::vector<int32_t> ids(text.size() + 8);
  int32_t n = 0;
  el_error err;
  el_tokenize(m, text.data(), text.size(), 1, 0, ids.data(), int32_t(ids.size()), &n, &err);
  ids.resize(size_t(n));
  return ids;
}

struct Flat {
  std::vector<int32_t> tokens, n;
};
Flat flat(const std::vector<std::vector<int32_t>>& ps) {
  Flat f;
  for (const auto& p : ps) {
    f.tokens.insert(f.tokens.end(), p.begin(), p.end());
    f.n.push_back(int32_t(p.size()));
  }
  return f;
}

std::vector<float> embed(el_context* c, const std::vector<std::vector<int32_t>>& ps, int n_layers, int n_embd) {
  const Flat f = flat(ps);
  std::vector<float> out(ps.size() * size_t(n_embd), NAN);
  el_error err;
  CHECK_MSG(el_embed(c, f.tokens.data(), f.n.data(), int32_t(ps.size()), n_layers, out.data(), &err) == EL_OK, "%s",
            err.message);
  return out;
}

// log P(next token) at each position by plain decodes of one sequence, one token at a time.
std::vector<float> logprobs_by_decode(el_context* c, const std::vector<int32_t>& p, int32_t slot) {
  std::vector<float> out;
  for (size_t j = 0; j + 1 < p.size(); ++j) {
    int32_t tok = p[j], pos = int32_t(j), seq = 0;
    int8_t want = 1;
    el_batch b{1, &tok, &pos, &seq, &slot, nullptr, &want};
    el_error err;
    CHECK_MSG(el_decode(c, &b, &err) == EL_OK, "%s", err.message);
    const float* l = el_get_logits(c, 0);
    const float mx = *std::max_element(l, l + 512);
    double z = 0;
    for (int v = 0; v < 512; ++v) z += std::exp(double(l[v] - mx));
    out.push_back(float(double(l[p[j + 1]] - mx) - std::log(z)));
  }
  el_error err;
  el_seq_clear(c, 0, &err);
  return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

// Embeddings: layer 0 is the mean of the token embeddings; packing prompts into shared passes
// (few sequences, small batches that split prompts) gives what each prompt gives alone.
void test_embed(el_model* m, const std::vector<std::vector<int32_t>>& ps) {
  const int E = 64;
  el_context* alone = make_ctx(m, 1, 128);
  el_context* packed = make_ctx(m, 2, 7);  // prompts spill over passes and reuse sequences
  const el::GGUFTensor& te = m->impl->token_embd();
  for (int nl : {0, 2, 5, -1}) {
    std::vector<float> one;
    for (const auto& p : ps) {
      const std::vector<float> e = embed(alone, {p}, nl, E);
      one.insert(one.end(), e.begin(), e.end());
    }
    CHECK_MSG(max_diff(embed(packed, ps, nl, E), one) < 1e-5, "n_layers %d: packed differs from alone by %g", nl,
              max_diff(embed(packed, ps, nl, E), one));
    if (nl == 0 && te.type == el::TensorType::F32) {
      std::vector<float> mean(E, 0.0f);
      for (int32_t t : ps[0])
        for (int i = 0; i < E; ++i) mean[size_t(i)] += reinterpret_cast<const float*>(te.data)[size_t(t) * E + i];
      for (float& v : mean) v /= float(ps[0].size());
      CHECK_MSG(max_diff(std::vector<float>(one.begin(), one.begin() + E), mean) < 1e-5, "layer 0 is not the mean embedding");
    }
  }
  // Deeper passes give different features; -1 and n_layer are the same (every layer + norm).
  CHECK(max_diff(embed(alone, ps, 2, E), embed(alone, ps, 5, E)) > 1e-3);
  CHECK(max_diff(embed(alone, ps, -1, E), embed(alone, ps, 5, E)) == 0);
  for (int s = 0; s < 2; ++s) CHECK(el_seq_length(packed, s) == 0);
  el_context_free(alone);
  el_context_free(packed);
}

// Log-likelihoods: equal to plain decodes, with and without adapters, when prompts with
// different adapters share passes.
void test_logprobs(el_model* m, const std::vector<std::vector<int32_t>>& ps) {
  const el::lora::ModelShapes s = el::lora::shapes_from_gguf(m->impl->file());
  const std::vector<el::lora::Module> mods = {el::lora::Module::Q, el::lora::Module::V, el::lora::Module::Down};
  const std::string a = g_dir + "/a.gguf", b = g_dir + "/b.gguf";
  write_file(a, serialize(gguf_of(random_adapter(s, 8, mods, 11), "llama", el::TensorType::F32)));
  write_file(b, serialize(gguf_of(random_adapter(s, 8, mods, 12), "llama", el::TensorType::F32)));
  el_context* ref = make_ctx(m, 1, 128, 2);
  el_context* c = make_ctx(m, 3, 16, 2);
  el_error err;
  for (el_context* x : {ref, c}) {
    CHECK_MSG(el_lora_load(x, 0, a.c_str(), nullptr, &err) == EL_OK, "%s", err.message);
    CHECK_MSG(el_lora_load(x, 1, b.c_str(), nullptr, &err) == EL_OK, "%s", err.message);
  }
  // Every prompt under no adapter, a and b, all in one call.
  std::vector<std::vector<int32_t>> all;
  std::vector<int32_t> slots;
  std::vector<float> want;
  for (int32_t slot : {-1, 0, 1})
    for (const auto& p : ps) {
      all.push_back(p);
      slots.push_back(slot);
      const std::vector<float> lp = logprobs_by_decode(ref, p, slot);
      want.insert(want.end(), lp.begin(), lp.end());
    }
  const Flat f = flat(all);
  std::vector<float> got(want.size(), NAN);
  CHECK_MSG(el_token_logprobs(c, f.tokens.data(), f.n.data(), int32_t(all.size()), slots.data(), nullptr, got.data(),
                              &err) == EL_OK,
            "%s", err.message);
  CHECK_MSG(max_diff(got, want) < 1e-4, "batched log-probs differ from decodes by %g", max_diff(got, want));
  // The adapters change the likelihoods (else this test could not tell them apart).
  const size_t per = want.size() / 3;
  CHECK(max_diff(std::vector<float>(want.begin(), want.begin() + per),
                 std::vector<float>(want.begin() + per, want.begin() + 2 * per)) > 1e-2);
  for (int sq = 0; sq < 3; ++sq) CHECK(el_seq_length(c, sq) == 0);
  el_lora_info li;
  CHECK(el_lora_slot_info(c, 0, &li, &err) == EL_OK && li.n_sequences == 0);  // no pin left behind
  el_context_free(ref);
  el_context_free(c);
}

void test_errors(el_model* m) {
  el_context* c = make_ctx(m, 2, 16);
  el_error err;
  std::vector<int32_t> toks = {1, 403, 407};
  int32_t n = 3, n0 = 0, n_long = 500;
  float out[64 * 2];
  CHECK(el_embed(c, toks.data(), &n0, 1, -1, out, &err) == EL_ERR_INVALID_ARGUMENT);
  CHECK(el_embed(c, toks.data(), &n_long, 1, -1, out, &err) == EL_ERR_INVALID_ARGUMENT &&
        std::string(err.message).find("n_ctx") != std::string::npos);
  std::vector<int32_t> bad = {1, 9999};
  int32_t nb = 2;
  CHECK(el_token_logprobs(c, bad.data(), &nb, 1, nullptr, nullptr, out, &err) == EL_ERR_INVALID_ARGUMENT);
  CHECK(el_seq_length(c, 0) == 0);  // cleared after the failure
  int32_t slot = 0;
  CHECK(el_token_logprobs(c, toks.data(), &n, 1, &slot, nullptr, out, &err) == EL_ERR_INVALID_ARGUMENT);
  // A sequence in use: refused, and left as it was.
  int32_t tok = 1, pos = 0, seq = 1;
  el_batch b{1, &tok, &pos, &seq, nullptr, nullptr, nullptr};
  CHECK(el_decode(c, &b, &err) == EL_OK);
  CHECK(el_embed(c, toks.data(), &n, 1, -1, out, &err) == EL_ERR_INVALID_ARGUMENT &&
        std::string(err.message).find("in use") != std::string::npos);
  CHECK(el_seq_length(c, 1) == 1);
  CHECK(el_embed(nullptr, toks.data(), &n, 1, -1, out, &err) == EL_ERR_INVALID_ARGUMENT);
  el_context_free(c);
}

}  // namespace

int main() {
  const std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (access(path.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "SKIP: %s not found (../shared is absent)\n", path.c_str());
    return el_test::test_exit_code();
  }
  char tmpl[] = "/tmp/el-test-features-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_dir = tmpl;
  el_model_params p{path.c_str()};
  el_model* m = nullptr;
  el_error err;
  if (el_model_load(&p, &m, &err) != EL_OK) {
    CHECK_MSG(false, "%s", err.message);
    return el_test::test_exit_code();
  }
  const std::vector<std::vector<int32_t>> prompts = {
      tokenize(m, "Once upon a time"), tokenize(m, "The little dog ran to the park and played with a red ball."),
      tokenize(m, "Lily"), tokenize(m, "Tom and his mom went to the store to buy some milk.")};
  test_embed(m, prompts);
  test_logprobs(m, prompts);
  test_errors(m);
  el_model_free(m);
  std::system(("rm -rf " + g_dir).c_str());
  return el_test::test_exit_code();
}
