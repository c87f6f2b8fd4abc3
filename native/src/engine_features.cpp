// The C API's routing features (edgelora.h: el_embed, el_token_logprobs). Both pack a list of
// prompts into shared forward passes over the context's sequences, one sequence per prompt.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "api_guard.h"
#include "engine_handles.h"

namespace {

using el::ErrorKind;
using el::api::guarded;
using el::api::require;

// Where a token of a pass came from.
struct TokenRef {
  int32_t prompt;
  int32_t pos;
};

struct Prompts {
  const int32_t* tokens;
  const int32_t* n_tokens;
  int32_t n;
  std::vector<int64_t> first;  // index of each prompt's first token in `tokens`
};

Prompts checked_prompts(const el::Context& c, const int32_t* tokens, const int32_t* n_tokens, int32_t n_prompts,
                        const char* fn) {
  const std::string f(fn);
  require(tokens && n_tokens, (f + ": tokens and n_tokens must not be NULL").c_str());
  if (n_prompts < 0) el::fail(ErrorKind::InvalidArgument, f + ": n_prompts must not be negative");
  Prompts ps{tokens, n_tokens, n_prompts, {}};
  ps.first.resize(size_t(n_prompts));
  int64_t at = 0;
  for (int32_t p = 0; p < n_prompts; ++p) {
    if (n_tokens[p] < 1 || n_tokens[p] > c.params().n_ctx)
      el::fail(ErrorKind::InvalidArgument, f + ": prompt " + std::to_string(p) + " has " + std::to_string(n_tokens[p]) +
                                               " tokens; it must have 1.." + std::to_string(c.params().n_ctx) + " (n_ctx)");
    ps.first[size_t(p)] = at;
    at += n_tokens[p];
  }
  for (int s = 0; s < c.params().n_seq_max; ++s)
    if (c.seq_length(s) != 0)
      el::fail(ErrorKind::InvalidArgument, f + ": sequence " + std::to_string(s) + " is in use; the context must be idle");
  return ps;
}

// Runs every prompt through the context: a sequence per prompt (ids reused once all are in
// use: those are cleared first), up to n_batch_max tokens per pass; `pass(batch, refs)` runs
// each pass and reads its results. Every sequence is empty again afterwards, also on error.
template <class Pass>
void for_each_pass(el::Context& c, const Prompts& ps, const int32_t* lora_slot, const float* lora_scale, Pass pass) {
  const int n_seq = c.params().n_seq_max, n_batch = c.params().n_batch_max;
  std::vector<int32_t> token, pos, seq, slot;
  std::vector<float> scale;
  std::vector<int8_t> logits;
  std::vector<TokenRef> refs;
  int next_seq = 0;
  auto clear_all = [&] {
    for (int s = 0; s < n_seq; ++s) c.seq_clear(s);
    next_seq = 0;
  };
  auto flush = [&] {
    if (token.empty()) return;
    el::BatchView b;
    b.n_tokens = int(token.size());
    b.token = token.data();
    b.pos = pos.data();
    b.seq_id = seq.data();
    b.lora_slot = slot.data();
    b.lora_scale = scale.data();
    b.logits = logits.data();
    pass(b, refs);
    token.clear(), pos.clear(), seq.clear(), slot.clear(), scale.clear(), logits.clear(), refs.clear();
  };
  try {
    for (int32_t p = 0; p < ps.n; ++p) {
      if (next_seq == n_seq) {
        flush();
        clear_all();
      }
      const int s = next_seq++;
      const int32_t* t = ps.tokens + ps.first[size_t(p)];
      for (int32_t j = 0; j < ps.n_tokens[p]; ++j) {
        if (int(token.size()) == n_batch) flush();
        token.push_back(t[j]);
        pos.push_back(j);
        seq.push_back(s);
        slot.push_back(lora_slot ? lora_slot[p] : -1);
        scale.push_back(lora_scale ? lora_scale[p] : 1.0f);
        logits.push_back(j + 1 < ps.n_tokens[p] ? 1 : 0);  // a next token to score
        refs.push_back(TokenRef{p, j});
      }
    }
    flush();
    clear_all();
  } catch (...) {
    clear_all();
    throw;
  }
}

}  // namespace

extern "C" {

el_status el_embed(el_context* ctx, const int32_t* tokens, const int32_t* n_tokens, int32_t n_prompts,
                   int32_t n_layers, float* out, el_error* err) {
  return guarded(err, [&] {
    require(ctx != nullptr, "el_embed: ctx is NULL");
    require(out != nullptr || n_prompts == 0, "el_embed: out is NULL");
    el::Context& c = ctx->impl;
    const Prompts ps = checked_prompts(c, tokens, n_tokens, n_prompts, "el_embed");
    const size_t E = size_t(ctx->model->impl->hparams().n_embd);
    std::vector<double> sum(size_t(n_prompts) * E, 0.0);
    for_each_pass(c, ps, nullptr, nullptr, [&](const el::BatchView& b, const std::vector<TokenRef>& refs) {
      const float* h = c.hidden(b, n_layers < 0 ? INT32_MAX : n_layers);
      for (int i = 0; i < b.n_tokens; ++i) {
        double* acc = &sum[size_t(refs[size_t(i)].prompt) * E];
        const float* row = h + size_t(i) * E;
        for (size_t k = 0; k < E; ++k) acc[k] += row[k];
      }
    });
    for (int32_t p = 0; p < n_prompts; ++p)
      for (size_t k = 0; k < E; ++k) out[size_t(p) * E + k] = float(sum[size_t(p) * E + k] / n_tokens[p]);
  });
}

el_status el_token_logprobs(el_context* ctx, const int32_t* tokens, const int32_t* n_tokens, int32_t n_prompts,
                            const int32_t* lora_slot, const float* lora_scale, float* out, el_error* err) {
  return guarded(err, [&] {
    require(ctx != nullptr, "el_token_logprobs: ctx is NULL");
    el::Context& c = ctx->impl;
    const Prompts ps = checked_prompts(c, tokens, n_tokens, n_prompts, "el_token_logprobs");
    require(out != nullptr || n_prompts == 0, "el_token_logprobs: out is NULL");
    const int n_vocab = ctx->model->impl->hparams().n_vocab;
    // Output index of each prompt's first scored position: prompt p fills n_tokens[p] - 1.
    std::vector<int64_t> out_first(static_cast<size_t>(n_prompts));
    for (int32_t p = 0, at = 0; p < n_prompts; ++p) {
      out_first[size_t(p)] = at;
      at += n_tokens[p] - 1;
    }
    for_each_pass(c, ps, lora_slot, lora_scale, [&](const el::BatchView& b, const std::vector<TokenRef>& refs) {
      c.decode(b);
      int row = 0;
      for (int i = 0; i < b.n_tokens; ++i) {
        if (!b.logits[i]) continue;
        const TokenRef r = refs[size_t(i)];
        const int32_t next = ps.tokens[ps.first[size_t(r.prompt)] + r.pos + 1];
        const float* l = c.logits(row++);
        float mx = l[0];
        for (int v = 1; v < n_vocab; ++v) mx = std::max(mx, l[v]);
        double z = 0;
        for (int v = 0; v < n_vocab; ++v) z += std::exp(double(l[v] - mx));
        out[out_first[size_t(r.prompt)] + r.pos] = float(double(l[next] - mx) - std::log(z));
      }
    });
  });
}

}  // extern "C"
