// The forward pass over a mixed batch: tokens of many sequences, each at its own position,
// go through every layer together, so each weight matrix is read once per batch.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "model.h"
#include "rms_norm.h"

namespace el {

namespace {

// Below these amounts of work per thread, waking another thread costs more than it saves
// (a 64-wide model like stories260K then runs on one thread, as it should).
constexpr double kMatmulBytesPerThread = 128 * 1024;  // weight bytes x rows
constexpr double kAttentionMacsPerThread = 32 * 1024;
constexpr int kRowAlign = 16;  // rows per chunk unit: 64 bytes of f32 output, no false sharing

std::string str(int64_t v) { return std::to_string(v); }

ContextParams normalized(ContextParams p, const HParams& hp) {
  if (p.n_threads < 1 || p.n_threads > 1024) fail(ErrorKind::InvalidArgument, "n_threads must be in 1..1024, got " + str(p.n_threads));
  if (p.n_ctx == 0) p.n_ctx = hp.n_ctx_train;
  if (p.kv_block_size == 0) p.kv_block_size = 32;
  if (p.n_ctx < 1) fail(ErrorKind::InvalidArgument, "n_ctx must be positive, got " + str(p.n_ctx));
  if (p.kv_block_size < 1) fail(ErrorKind::InvalidArgument, "kv_block_size must be positive, got " + str(p.kv_block_size));
  if (p.n_seq_max < 1) fail(ErrorKind::InvalidArgument, "n_seq_max must be positive, got " + str(p.n_seq_max));
  if (p.n_batch_max < 1) fail(ErrorKind::InvalidArgument, "n_batch_max must be positive, got " + str(p.n_batch_max));
  if (p.n_kv_blocks == 0) {
    const int64_t per_seq = (int64_t(p.n_ctx) + p.kv_block_size - 1) / p.kv_block_size;
    const int64_t total = per_seq * p.n_seq_max;
    if (total > (1 << 30)) fail(ErrorKind::InvalidArgument, "KV pool of " + str(total) + " blocks is too large");
    p.n_kv_blocks = int(total);
  }
  if (p.n_kv_blocks < 1) fail(ErrorKind::InvalidArgument, "n_kv_blocks must be positive, got " + str(p.n_kv_blocks));
  if (p.lora_slots < 0 || p.lora_max_rank < 0)
    fail(ErrorKind::InvalidArgument, "lora_slots and lora_max_rank must not be negative");
  return p;
}

// ggml's GELU table (GGML_GELU_FP16): gelu_tanh of every F16 value, rounded to F16 (128 KiB,
// built on first use).
const std::vector<fp16_t>& gelu_f16_table() {
  static const std::vector<fp16_t> table = [] {
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
    std::vector<fp16_t> t(65536);
    for (uint32_t i = 0; i < t.size(); ++i) {
      const float h = fp16_to_fp32(fp16_t(i));
      t[i] = fp32_to_fp16(0.5f * h * (1.0f + std::tanh(kSqrt2OverPi * h * (1.0f + kCoefA * h * h))));
    }
    return t;
  }();
  return table;
}

// gate[i] = gelu_tanh(gate[i]) * up[i] as ggml computes it: the gate rounded to F16 and looked up
// in the table; 0 below -10 and the identity above 10.
void gelu_tanh_mul(int64_t n, float* gate, const float* up) {
  const std::vector<fp16_t>& table = gelu_f16_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    const float g = x <= -10.0f ? 0.0f : x >= 10.0f ? x : fp16_to_fp32(table[fp32_to_fp16(x)]);
    gate[i] = g * up[i];
  }
}

KVCacheParams kv_params(const ContextParams& p, const HParams& hp) {
  KVCacheParams k;
  k.n_layer = hp.n_layer;
  k.kv_dim = hp.kv_dim();
  k.block_size = p.kv_block_size;
  k.n_blocks = p.n_kv_blocks;
  k.n_seq_max = p.n_seq_max;
  k.n_ctx = p.n_ctx;
  k.type = p.kv_type;
  return k;
}

}  // namespace

Context::Context(const Model& model, const ContextParams& params, const kernels::KernelSet& ks)
    : model_(model),
      hp_(model.hparams()),
      p_(normalized(params, model.hparams())),
      ks_(ks),
      kv_(kv_params(p_, hp_)),
      pool_(p_.n_threads) {
  // Every weight must have a dot product on this kernel path, the embeddings a conversion.
  if (!ks_.of(model_.token_embd().type).to_float && model_.token_embd().type != TensorType::F32)
    fail(ErrorKind::Unsupported, std::string("kernel path ") + ks_.name + " cannot read token_embd of type " +
                                     type_traits(model_.token_embd().type).name);
  const size_t B = size_t(p_.n_batch_max);
  // Per activation type: the widest input and one weight type that converts to it.
  int64_t max_in[kernels::kMaxTypeId] = {};
  TensorType wtype_for[kernels::kMaxTypeId] = {};
  for (int il = -1; il < hp_.n_layer; ++il) {
    for (int m = 0; m < (il < 0 ? 1 : kLayerModules); ++m) {
      const Linear& lin = model_.linear(il, il < 0 ? Module::Output : Module(m));
      if (!ks_.of(lin.w.type).vec_dot)
        fail(ErrorKind::Unsupported, std::string("kernel path ") + ks_.name + " has no dot product for type " +
                                         type_traits(lin.w.type).name + " (tensor " + lin.tensor->name + ")");
      const uint32_t a = static_cast<uint32_t>(type_traits(lin.w.type).vec_dot_type);
      max_in[a] = std::max(max_in[a], lin.w.n_in);
      wtype_for[a] = lin.w.type;
    }
  }

  seq_slot_.assign(size_t(p_.n_seq_max), -1);
  if (p_.lora_slots > 0) {
    if (p_.lora_max_rank < 1) fail(ErrorKind::InvalidArgument, "lora_max_rank must be positive when lora_slots > 0");
    lora_ = std::make_unique<lora::BatchLora>(ks_, lora::shapes_from_gguf(model_.file()), p_.lora_slots,
                                              p_.lora_max_rank, p_.lora_pool_type, B, pool_.size());
  }

  const size_t E = hp_.n_embd, Q = hp_.q_dim(), KV = hp_.kv_dim(), F = hp_.n_ff;
  x_.resize(B * E);
  xn_.resize(B * E);
  q_.resize(B * Q);
  k_.resize(B * KV);
  v_.resize(B * KV);
  attn_.resize(B * Q);
  tmp_.resize(B * E);
  gate_.resize(B * F);
  up_.resize(B * F);
  rope_.resize(B * size_t(hp_.n_rot));
  if (!hp_.swa_layer.empty()) rope_swa_.resize(B * size_t(hp_.n_rot));
  if (hp_.ffn_act == FfnAct::GeluTanh) gelu_f16_table();  // built now, not in the first decode
  score_stride_ = (size_t(p_.n_ctx) + 15) / 16 * 16 + 16;  // padded: threads never share a line
  scores_.resize(score_stride_ * size_t(p_.n_threads));
  slot_.resize(B);
  scale_.resize(B);
  out_rows_.resize(B);
  run_len_.resize(size_t(p_.n_seq_max));
  run_stamp_.assign(size_t(p_.n_seq_max), 0);
  growth_.reserve(std::min<size_t>(B, size_t(p_.n_seq_max)));
  logits_.resize(std::min<size_t>(B, size_t(p_.n_seq_max)) * size_t(hp_.n_vocab));

  // Grow each activation buffer to its steady-state size now, not during a decode.
  std::vector<float> zeros;
  for (uint32_t t = 0; t < uint32_t(kernels::kMaxTypeId); ++t) {
    if (!max_in[t]) continue;
    zeros.assign(B * size_t(max_in[t]), 0.0f);
    kernels::prepare_activations(ks_, wtype_for[t], zeros.data(), max_in[t], int(B), max_in[t], prepared_[t].act);
  }
}

// ---- decode ------------------------------------------------------------------------------

void Context::decode(const BatchView& b) {
  validate_and_reserve(b);
  embed(b);
  rope_tables(b);
  for (int il = 0; il < hp_.n_layer; ++il) layer_forward(il, b);
  output_logits(b);
  for (const SeqGrowth& g : growth_) kv_.set_length(g.seq, g.new_len);
}

const float* Context::logits(int i) const {
  if (i < 0 || i >= n_outputs_) return nullptr;
  return logits_.data() + size_t(i) * size_t(hp_.n_vocab);
}

void Context::seq_clear(int seq) {
  if (seq < 0 || seq >= p_.n_seq_max)
    fail(ErrorKind::InvalidArgument, "seq_id " + str(seq) + " out of range [0, " + str(p_.n_seq_max) + ")");
  kv_.clear(seq);
  if (lora_) lora_->pool().unbind_sequence(seq_slot_[size_t(seq)]);
}

int Context::seq_length(int seq) const {
  if (seq < 0 || seq >= p_.n_seq_max) return -1;
  return kv_.length(seq);
}

void Context::validate_and_reserve(const BatchView& b) {
  const int n = b.n_tokens;
  if (n < 1 || n > p_.n_batch_max)
    fail(ErrorKind::InvalidArgument, "batch has " + str(n) + " tokens; n_batch_max is " + str(p_.n_batch_max));
  if (!b.token || !b.pos || !b.seq_id) fail(ErrorKind::InvalidArgument, "batch token, pos and seq_id must not be NULL");

  // Sequence lengths as the batch would leave them (run_len_ entries are valid for
  // sequences stamped with this call's stamp).
  ++stamp_;
  growth_.clear();
  int n_out = 0;
  for (int i = 0; i < n; ++i) {
    const int s = b.seq_id[i];
    // Built only on failure: validation allocates nothing for a good batch.
    const auto at = [i] { return "batch token " + std::to_string(i) + ": "; };
    if (s < 0 || s >= p_.n_seq_max)
      fail(ErrorKind::InvalidArgument, at() + "seq_id " + str(s) + " out of range [0, " + str(p_.n_seq_max) + ")");
    if (b.token[i] < 0 || b.token[i] >= hp_.n_vocab)
      fail(ErrorKind::InvalidArgument, at() + "token id " + str(b.token[i]) + " out of range [0, " + str(hp_.n_vocab) + ")");
    const int slot = b.lora_slot ? b.lora_slot[i] : -1;
    if (slot < -1 || slot >= p_.lora_slots)
      fail(ErrorKind::InvalidArgument, at() + "lora_slot " + str(slot) + " out of range (-1 or 0.." + str(p_.lora_slots - 1) + ")");
    const float scale = b.lora_scale ? b.lora_scale[i] : 1.0f;
    if (!std::isfinite(scale)) fail(ErrorKind::InvalidArgument, at() + "lora_scale is not finite");
    if (run_stamp_[s] != stamp_) {
      run_stamp_[s] = stamp_;
      run_len_[s] = kv_.length(s);
      growth_.push_back(SeqGrowth{s, 0});
    }
    if (b.pos[i] != run_len_[s])
      fail(ErrorKind::InvalidArgument, at() + "pos " + str(b.pos[i]) + " of sequence " + str(s) + " must be " +
                                           str(run_len_[s]) + " (sequences grow append-only)");
    if (++run_len_[s] > p_.n_ctx)
      fail(ErrorKind::InvalidArgument, at() + "sequence " + str(s) + " would exceed n_ctx = " + str(p_.n_ctx) + " tokens");
    if (b.logits ? b.logits[i] != 0 : i == n - 1) ++n_out;
  }
  for (SeqGrowth& g : growth_) g.new_len = run_len_[g.seq];

  const size_t need = size_t(n_out) * size_t(hp_.n_vocab);
  if (logits_.size() < need) logits_.resize(need);  // only when more outputs than n_seq_max
  // Adapter slots must be loaded and one per sequence; checked before anything is reserved.
  if (lora_) lora_->pool().check_batch(p_.n_seq_max, b.seq_id, b.lora_slot, n);
  kv_.reserve(growth_.data(), int(growth_.size()));
  // Sequences now reference their slots (so the slots cannot be unloaded under them).
  if (lora_) lora_->pool().bind_sequences(seq_slot_.data(), p_.n_seq_max, b.seq_id, b.lora_slot, n);

  // Accepted: nothing below fails on bad input.
  n_outputs_ = 0;
  for (int i = 0; i < n; ++i) {
    slot_[i] = b.lora_slot ? b.lora_slot[i] : -1;
    scale_[i] = b.lora_scale ? b.lora_scale[i] : 1.0f;
    if (b.logits ? b.logits[i] != 0 : i == n - 1) out_rows_[n_outputs_++] = i;
  }
  if (lora_) lora_->plan(slot_.data(), scale_.data(), n);
}

void Context::embed(const BatchView& b) {
  const GGUFTensor& t = model_.token_embd();
  const size_t row_bytes = row_size(t.type, hp_.n_embd);
  for (int i = 0; i < b.n_tokens; ++i) {
    const uint8_t* row = t.data + size_t(b.token[i]) * row_bytes;
    float* x = x_.data() + size_t(i) * hp_.n_embd;
    if (t.type == TensorType::F32) std::memcpy(x, row, row_bytes);
    else ks_.of(t.type).to_float(row, x, hp_.n_embd);
    if (hp_.embd_scale != 1.0f)
      for (int e = 0; e < hp_.n_embd; ++e) x[e] *= hp_.embd_scale;
  }
}

// cos/sin per rotated pair and token, computed like ggml's rope cache (float theta,
// multiplied by theta_scale pair after pair) so that positions rotate identically. Sliding-window
// layers have a table of their own (their RoPE base and scale).
void Context::rope_tables(const BatchView& b) {
  auto fill = [&](std::vector<float>& table, float base, float freq_scale) {
    const int n_rot = hp_.n_rot;
    const float theta_scale = std::pow(base, -2.0f / float(n_rot));
    const std::vector<float>& ff = model_.rope_freqs();
    for (int i = 0; i < b.n_tokens; ++i) {
      float* cs = table.data() + size_t(i) * n_rot;
      float theta = float(b.pos[i]);
      for (int i0 = 0; i0 < n_rot; i0 += 2) {
        const float extrap = ff.empty() ? theta : theta / ff[i0 / 2];
        const float th = freq_scale * extrap;
        cs[i0] = std::cos(th);
        cs[i0 + 1] = std::sin(th);
        theta *= theta_scale;
      }
    }
  };
  fill(rope_, hp_.rope_freq_base, hp_.rope_freq_scale);
  if (!rope_swa_.empty()) fill(rope_swa_, hp_.rope_freq_base_swa, hp_.rope_freq_scale_swa);
}

// Rotates the first n_rot values of every head (the rest, with partial rotary, stay as they are).
void Context::apply_rope(float* rows, int n_heads, int n_tok, const float* table) {
  const int hd = hp_.head_dim, n_rot = hp_.n_rot;
  // Llama GGUFs store Q/K permuted for rotation of adjacent pairs; the others rotate halves.
  const int stride = hp_.rope_neox ? 1 : 2;
  const int offset = hp_.rope_neox ? n_rot / 2 : 1;
  for (int t = 0; t < n_tok; ++t) {
    const float* cs = table + size_t(t) * n_rot;
    for (int h = 0; h < n_heads; ++h) {
      float* v = rows + (size_t(t) * n_heads + h) * hd;
      for (int i0 = 0; i0 < n_rot; i0 += 2) {
        float* p = v + (i0 / 2) * stride;
        const float x0 = p[0], x1 = p[offset];
        p[0] = x0 * cs[i0] - x1 * cs[i0 + 1];
        p[offset] = x0 * cs[i0 + 1] + x1 * cs[i0];
      }
    }
  }
}

// RMS norm of every head of every token (qwen3's and gemma3's q/k norms), in place.
void Context::head_norm(float* rows, const std::vector<float>& w, int n_heads, int n_tok) {
  const int hd = hp_.head_dim;
  for (size_t i = 0, e = size_t(n_tok) * n_heads; i < e; ++i) rms_norm(rows + i * hd, w.data(), rows + i * hd, hd, hp_.rms_eps);
}

// One transformer block over the batch, in the order of llama.cpp's graphs:
//   x += [post_norm](attn(rope([q_norm](q)), rope([k_norm](k)), v) of norm(x))
//   x += [post_norm](down(act(gate) * up) of norm(x))
// (bracketed steps only where the architecture has them).
void Context::layer_forward(int il, const BatchView& b) {
  const Layer& L = model_.layer(il);
  const int n = b.n_tokens, E = hp_.n_embd, F = hp_.n_ff;
  const float* rope = hp_.is_swa(il) ? rope_swa_.data() : rope_.data();

  for (int t = 0; t < n; ++t) rms_norm(&x_[size_t(t) * E], L.attn_norm.data(), &xn_[size_t(t) * E], E, hp_.rms_eps);
  const Input attn_in = input(xn_.data(), n, E);
  project(il, {{Module::Q, q_.data()}, {Module::K, k_.data()}, {Module::V, v_.data()}}, attn_in);
  if (hp_.qk_norm) {
    head_norm(q_.data(), L.attn_q_norm, hp_.n_head, n);
    head_norm(k_.data(), L.attn_k_norm, hp_.n_head_kv, n);
  }
  apply_rope(q_.data(), hp_.n_head, n, rope);
  apply_rope(k_.data(), hp_.n_head_kv, n, rope);
  store_kv(il, b);
  attention(il, b);
  const Input o_in = input(attn_.data(), n, hp_.q_dim());
  project(il, {{Module::O, tmp_.data()}}, o_in);
  add_branch(L.attn_post_norm, n);

  for (int t = 0; t < n; ++t) rms_norm(&x_[size_t(t) * E], L.ffn_norm.data(), &xn_[size_t(t) * E], E, hp_.rms_eps);
  const Input ffn_in = input(xn_.data(), n, E);
  const Fuse act = hp_.ffn_act == FfnAct::GeluTanh ? Fuse::GeGLU : Fuse::SwiGLU;
  project(il, {{Module::Gate, gate_.data()}, {Module::Up, up_.data()}}, ffn_in, act);
  const Input down_in = input(gate_.data(), n, F);
  project(il, {{Module::Down, tmp_.data()}}, down_in);
  add_branch(L.ffn_post_norm, n);
}

// x += tmp, the branch output (first normed by `post_norm` when the architecture has one).
void Context::add_branch(const std::vector<float>& post_norm, int n) {
  const int E = hp_.n_embd;
  if (!post_norm.empty())
    for (int t = 0; t < n; ++t) rms_norm(&tmp_[size_t(t) * E], post_norm.data(), &tmp_[size_t(t) * E], E, hp_.rms_eps);
  for (size_t i = 0, e = size_t(n) * E; i < e; ++i) x_[i] += tmp_[i];
}

void Context::store_kv(int il, const BatchView& b) {
  const int kvd = hp_.kv_dim();
  const kernels::FromFloatFn to_f16 = ks_.of(TensorType::F16).from_float;
  for (int t = 0; t < b.n_tokens; ++t) {
    const float* k = k_.data() + size_t(t) * kvd;
    const float* v = v_.data() + size_t(t) * kvd;
    uint8_t* kd = kv_.k_row(il, b.seq_id[t], b.pos[t]);
    uint8_t* vd = kv_.v_row(il, b.seq_id[t], b.pos[t]);
    if (p_.kv_type == KVType::F32) {
      std::memcpy(kd, k, size_t(kvd) * sizeof(float));
      std::memcpy(vd, v, size_t(kvd) * sizeof(float));
    } else {
      to_f16(k, kd, kvd);
      to_f16(v, vd, kvd);
    }
  }
}

void Context::attention(int il, const BatchView& b) {
  const int n = b.n_tokens, H = hp_.n_head, hd = hp_.head_dim;
  double work = 0;
  for (int t = 0; t < n; ++t) work += double(b.pos[t] + 1) * H * hd * 2;
  const int nth = threads_for(work, kAttentionMacsPerThread);
  const int64_t items = int64_t(n) * H;
  pool_.parallel_for(nth, items, 1, [&](int64_t begin, int64_t end, int ith) {
    float* scores = scores_.data() + size_t(ith) * score_stride_;
    for (int64_t item = begin; item < end; ++item) {
      const int t = int(item / H), h = int(item % H);
      const size_t off = (size_t(t) * H + h) * hd;
      attend_one(il, b.seq_id[t], b.pos[t], h, q_.data() + off, attn_.data() + off, scores);
    }
  });
}

// Causal attention of one query head over its sequence's positions (GQA: query head h reads
// KV head h / (n_head / n_head_kv)), block by block through the paged cache: positions 0..pos,
// or on a sliding-window layer the last n_swa of them (llama.cpp masks p0 when pos - p0 >= n_swa).
void Context::attend_one(int il, int seq, int pos, int h, const float* q, float* out, float* scores) const {
  const int hd = hp_.head_dim, bs = p_.kv_block_size, n_kv = pos + 1;
  const int first = hp_.is_swa(il) ? std::max(0, pos - hp_.n_swa + 1) : 0;
  const size_t head_off = size_t(h / (hp_.n_head / hp_.n_head_kv)) * hd;
  const size_t kvd = size_t(hp_.kv_dim());
  const float scale = hp_.attn_scale;
  const bool f16 = p_.kv_type == KVType::F16;

  // Runs of positions inside one cache block: F16 (the default) a run per kernel call, F32
  // position by position. scores[j - first] is position j's.
  for (int j0 = first; j0 < n_kv;) {
    const int jn = std::min(bs - j0 % bs, n_kv - j0);
    const uint8_t* base = kv_.k_row(il, seq, j0);
    float* sc = scores + (j0 - first);
    if (f16) {
      ks_.attn_scores_f16(hd, jn, reinterpret_cast<const fp16_t*>(base) + head_off, int64_t(kvd), q, scale, sc);
    } else {
      for (int j = 0; j < jn; ++j)
        sc[j] = ks_.dot_f32(hd, reinterpret_cast<const float*>(base) + j * kvd + head_off, q) * scale;
    }
    j0 += jn;
  }
  ks_.softmax_f32(n_kv - first, scores);  // the weights
  std::fill(out, out + hd, 0.0f);
  for (int j0 = first; j0 < n_kv;) {
    const int jn = std::min(bs - j0 % bs, n_kv - j0);
    const uint8_t* base = kv_.v_row(il, seq, j0);
    const float* sc = scores + (j0 - first);
    if (f16) {
      ks_.attn_values_f16(hd, jn, sc, reinterpret_cast<const fp16_t*>(base) + head_off, int64_t(kvd), out);
    } else {
      for (int j = 0; j < jn; ++j) ks_.axpy_f32(hd, sc[j], reinterpret_cast<const float*>(base) + j * kvd + head_off, out);
    }
    j0 += jn;
  }
}

// Final norm and output head, only for the tokens that asked for logits.
void Context::output_logits(const BatchView& b) {
  const int E = hp_.n_embd, no = n_outputs_;
  if (no == 0) return;
  for (int r = 0; r < no; ++r) {
    const int t = out_rows_[r];
    rms_norm(&x_[size_t(t) * E], model_.output_norm().data(), &xn_[size_t(r) * E], E, hp_.rms_eps);
  }
  project(-1, {{Module::Output, logits_.data()}}, input(xn_.data(), no, E));
  if (hp_.logit_softcap > 0) {  // cap * tanh(logit / cap), as llama.cpp's gemma graphs
    const float cap = hp_.logit_softcap;
    for (size_t i = 0, e = size_t(no) * size_t(hp_.n_vocab); i < e; ++i) logits_[i] = cap * std::tanh(logits_[i] / cap);
  }
}

// ---- linear projections ---------------------------------------------------------------------

void Context::project(int il, std::initializer_list<Projection> ps, const Input& in, Fuse fuse) {
  const bool glu = fuse != Fuse::None;
  if (ps.size() > size_t(kMaxProjections) || (glu && ps.size() != 2))
    fail(ErrorKind::Internal, "project: unsupported projection group");
  // Each projection's weight and its input converted to the weight's activation type. Row
  // items (kRowAlign rows) are laid end to end over the projections, so a chunk may span the
  // end of one and the start of the next; gate and up (a GLU) share one row space.
  const Linear* lins[kMaxProjections];
  const kernels::PreparedActivations* acts[kMaxProjections];
  lora::DispatchTarget targets[kMaxProjections];
  int n_parts = 0;
  int64_t n_items = 0;
  double work = 0;
  for (const Projection& p : ps) {
    const Linear& lin = model_.linear(il, p.m);
    auto& cached = prepared_[static_cast<uint32_t>(type_traits(lin.w.type).vec_dot_type)];
    if (cached.epoch != in.epoch) {
      kernels::prepare_activations(ks_, lin.w.type, in.x, in.n_in, in.n_rows, in.n_in, cached.act);
      cached.epoch = in.epoch;
    }
    lins[n_parts] = &lin;
    acts[n_parts] = &cached.act;
    targets[n_parts] = {lora::Module(int(p.m)), p.out, lin.w.n_out, glu ? 0 : n_items};
    if (!glu || n_parts == 0) n_items += (lin.w.n_out + kRowAlign - 1) / kRowAlign;
    work += double(lin.w.row_bytes) * double(lin.w.n_out) * in.n_rows;
    ++n_parts;
  }
  const int nth = threads_for(work, kMatmulBytesPerThread);
  const int n_ranges = pool_.ranges(nth, n_items, 1);

  // Gate = act(gate) * up on rows [r0, r1) of batch token t.
  struct Glu {
    const kernels::KernelSet* ks;
    float *gate, *up;
    int64_t n_ff;
    static void silu(const void* self, int t, int64_t r0, int64_t r1) {
      const Glu& s = *static_cast<const Glu*>(self);
      s.ks->silu_mul(r1 - r0, s.gate + size_t(t) * s.n_ff + r0, s.up + size_t(t) * s.n_ff + r0);
    }
    static void gelu(const void* self, int t, int64_t r0, int64_t r1) {
      const Glu& s = *static_cast<const Glu*>(self);
      gelu_tanh_mul(r1 - r0, s.gate + size_t(t) * s.n_ff + r0, s.up + size_t(t) * s.n_ff + r0);
    }
  };
  const Glu act{&ks_, targets[0].out, glu ? targets[1].out : nullptr, targets[0].n_out};
  const lora::RowsHook act_rows = fuse == Fuse::SwiGLU ? &Glu::silu : fuse == Fuse::GeGLU ? &Glu::gelu : nullptr;

  // LoRA (Q..Down, not the output head) in the same dispatch: the adapted tokens' GLU runs
  // after their expands (lora/lora_dispatch.h).
  const bool with_lora = lora_ && ps.begin()->m != Module::Output;
  const block_q8_0* base_q8 =
      acts[0]->type == TensorType::Q8_0 ? static_cast<const block_q8_0*>(acts[0]->row(0)) : nullptr;
  lora::BatchLora::Dispatch lora(with_lora ? lora_.get() : nullptr, il, targets, n_parts, in.x, in.n_in, base_q8,
                                 n_items, n_ranges, kRowAlign, act_rows, &act);

  auto base_items = [&](int64_t i0, int64_t i1, int) {
    lora.shrink_tiles();
    for (int k = 0; k < n_parts; ++k) {
      const Linear& lin = *lins[k];
      const int64_t first = targets[k].first_item;
      const int64_t r0 = (std::max(i0, first) - first) * kRowAlign, r1 = std::min(lin.w.n_out, (i1 - first) * kRowAlign);
      if (r0 >= r1) continue;
      kernels::matmul_rows(ks_, lin.w, *acts[k], r0, r1, targets[k].out, lin.w.n_out);
      if (!lin.bias.empty())
        for (int r = 0; r < in.n_rows; ++r) {
          float* y = targets[k].out + size_t(r) * lin.w.n_out;
          for (int64_t o = r0; o < r1; ++o) y[o] += lin.bias[o];
        }
    }
    if (glu) {
      const int64_t r0 = i0 * kRowAlign, r1 = std::min(targets[0].n_out, i1 * kRowAlign);
      for (int t = 0; t < in.n_rows; ++t)
        if (!lora.active() || !lora_->adapted(t)) act_rows(&act, t, r0, r1);
    }
    lora.rows_done(i0, i1);
  };
  pool_.parallel_for(nth, n_items, 1, base_items, [&](int ith) { lora.expands(ith); });
}

int Context::threads_for(double work, double per_thread) const {
  const double n = work / per_thread;
  return n < 2 ? 1 : int(std::min<double>(n, pool_.size()));
}

}  // namespace el
