// The C API (edgelora.h) over Model and Context: every entry catches every exception and
// turns it into an el_status plus a message. The el_sampler_* entries live in sampler.cpp.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "edgelora.h"
#include "api_guard.h"
#include "engine_handles.h"

namespace {

using el::ErrorKind;
using el::api::copy_str;
using el::api::guarded;
using el::api::require;

// The C API numbers the LoRA pool types as lora/lora_pool_types.h does.
static_assert(int(EL_LORA_POOL_F16) == int(el::lora::LoraPoolType::F16) &&
                  int(EL_LORA_POOL_Q8) == int(el::lora::LoraPoolType::Q8) &&
                  int(EL_LORA_POOL_Q4) == int(el::lora::LoraPoolType::Q4) && el::lora::kNumLoraPoolTypes == 3,
              "el_lora_pool_type and LoraPoolType list the same types");

// The kernel path for contexts created from now on (null = kernels::best()).
std::atomic<const el::kernels::KernelSet*> g_kernels{nullptr};

const el::kernels::KernelSet& current_kernels() {
  const el::kernels::KernelSet* ks = g_kernels.load(std::memory_order_acquire);
  return ks ? *ks : el::kernels::best();
}

// "q4_0:169,f32:49": tensor count per type, most frequent first.
std::string weight_types(const el::GGUFFile& f) {
  std::map<std::string, int> counts;
  for (const auto& t : f.tensors()) ++counts[el::type_traits(t.type).name];
  std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string s;
  for (const auto& [name, n] : v) s += (s.empty() ? "" : ",") + name + ":" + std::to_string(n);
  return s;
}

// "q4_0:168,q8_0:1": matrices the loader repacked for the kernel path (kernels/packed.h).
std::string packed_types(const el::Model& m) {
  std::map<std::string, int> counts;
  auto count = [&](const el::Linear& l) {
    if (l.w.layout == el::kernels::WeightLayout::Packed8) ++counts[el::type_traits(l.w.type).name];
  };
  for (int il = 0; il < m.hparams().n_layer; ++il)
    for (int mi = 0; mi < el::kLayerModules; ++mi) count(m.linear(il, el::Module(mi)));
  count(m.linear(-1, el::Module::Output));
  std::string s;
  for (const auto& [name, n] : counts) s += (s.empty() ? "" : ",") + name + ":" + std::to_string(n);
  return s;
}

std::string meta_as_text(const el::GGUFValue& v) {
  using T = el::GGUFType;
  switch (v.type) {
    case T::STRING: return v.str;
    case T::BOOL: return v.i ? "true" : "false";
    case T::FLOAT32:
    case T::FLOAT64: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", v.f);
      return buf;
    }
    case T::UINT64: return std::to_string(v.u);
    default: return std::to_string(v.i);
  }
}

}  // namespace

extern "C" {

// ---- kernels ----

const char* el_kernel_path(void) { return current_kernels().name; }
const char* el_supported_architectures(void) { return el::supported_architectures(); }

el_status el_set_kernel_path(const char* name, el_error* err) {
  return guarded(err, [&] {
    require(name != nullptr, "kernel path name is NULL");
    const el::kernels::KernelSet* ks = el::kernels::by_name(name);
    if (!ks) {
      std::string avail;
      for (const auto* k : el::kernels::available()) avail += (avail.empty() ? "" : ", ") + std::string(k->name);
      el::fail(ErrorKind::Unsupported, std::string("kernel path '") + name + "' is not available here (available: " + avail + ")");
    }
    g_kernels.store(ks, std::memory_order_release);
  });
}

// ---- model ----

el_status el_model_load(const el_model_params* params, el_model** out, el_error* err) {
  return guarded(err, [&] {
    require(params && params->path && out, "el_model_load: params, params->path and out must not be NULL");
    *out = nullptr;
    auto m = std::make_unique<el_model>();
    el::Model::LoadProgress progress;
    if (params->progress)
      progress = [params](uint64_t done, uint64_t total) { params->progress(done, total, params->progress_user); };
    m->impl = el::Model::load(params->path, current_kernels(), progress);  // packed for the path its contexts use
    *out = m.release();
  });
}

void el_model_free(el_model* model) { delete model; }

el_status el_model_get_info(const el_model* model, el_model_info* out, el_error* err) {
  return guarded(err, [&] {
    require(model && out, "el_model_get_info: model and out must not be NULL");
    const el::Model& m = *model->impl;
    const el::HParams& hp = m.hparams();
    const el::Tokenizer& tok = m.tokenizer();
    el_model_info info{};
    copy_str(info.arch, sizeof info.arch, hp.arch_name);
    copy_str(info.name, sizeof info.name, m.file().get_string_opt("general.name").value_or(""));
    info.n_vocab = hp.n_vocab;
    info.n_ctx_train = hp.n_ctx_train;
    info.n_embd = hp.n_embd;
    info.n_layer = hp.n_layer;
    info.n_head = hp.n_head;
    info.n_head_kv = hp.n_head_kv;
    info.n_ff = hp.n_ff;
    info.head_dim = hp.head_dim;
    info.rope_freq_base = hp.rope_freq_base;
    info.rms_norm_eps = hp.rms_eps;
    info.rope_neox = hp.rope_neox ? 1 : 0;
    info.tied_output = m.tied_output() ? 1 : 0;
    for (const auto& t : m.file().tensors()) {
      info.n_params += t.n_elements();
      info.weight_bytes += int64_t(t.nbytes);
    }
    copy_str(info.weight_types, sizeof info.weight_types, weight_types(m.file()));
    copy_str(info.packed_types, sizeof info.packed_types, packed_types(m));
    copy_str(info.tokenizer, sizeof info.tokenizer, tok.kind());
    copy_str(info.tokenizer_pre, sizeof info.tokenizer_pre, tok.pre());
    info.bos = tok.bos();
    info.eos = tok.eos();
    info.add_bos = tok.add_bos() ? 1 : 0;
    *out = info;
  });
}

int64_t el_model_meta_str(const el_model* model, const char* key, char* buf, size_t buf_size) {
  if (!model || !key) return -1;
  try {
    const el::GGUFValue* v = model->impl->file().find(key);
    if (!v || v->type == el::GGUFType::ARRAY) return -1;
    const std::string s = meta_as_text(*v);
    if (buf) copy_str(buf, buf_size, s);
    return int64_t(s.size());
  } catch (...) {
    return -1;
  }
}

// ---- tokenizer ----

el_status el_tokenize(const el_model* model, const char* text, size_t len, int add_special, int parse_special,
                      int32_t* ids, int32_t cap, int32_t* n_out, el_error* err) {
  return guarded(err, [&] {
    require(model && n_out, "el_tokenize: model and n_out must not be NULL");
    require(text || len == 0, "el_tokenize: text is NULL");
    require(cap >= 0 && (ids || cap == 0), "el_tokenize: bad output buffer");
    const std::vector<int32_t> v =
        model->impl->tokenizer().encode(std::string_view(text ? text : "", len), add_special != 0, parse_special != 0);
    if (v.size() > size_t(INT32_MAX)) el::fail(ErrorKind::InvalidArgument, "el_tokenize: text too long");
    std::copy_n(v.begin(), std::min<size_t>(v.size(), size_t(cap)), ids);
    *n_out = int32_t(v.size());
  });
}

int32_t el_token_piece(const el_model* model, int32_t id, int render_special, char* buf, int32_t buf_size) {
  if (!model || id < 0 || id >= model->impl->hparams().n_vocab) return -1;
  try {
    const std::string s = model->impl->tokenizer().token_to_piece(id, render_special != 0);
    if (buf && buf_size > 0) {
      std::memcpy(buf, s.data(), std::min<size_t>(s.size(), size_t(buf_size)));
      if (s.size() < size_t(buf_size)) buf[s.size()] = '\0';
    }
    return int32_t(s.size());
  } catch (...) {
    return -1;
  }
}

int el_token_is_eog(const el_model* model, int32_t id) {
  if (!model || id < 0 || id >= model->impl->hparams().n_vocab) return 0;
  return model->impl->tokenizer().is_eog(id) ? 1 : 0;
}

// ---- context ----

el_context_params el_context_default_params(void) {
  el_context_params p{};
  const unsigned hw = std::thread::hardware_concurrency();
  p.n_threads = int32_t(std::clamp(hw, 1u, 4u));
  p.n_ctx = 2048;
  p.n_kv_blocks = 0;
  p.kv_block_size = 32;
  p.n_seq_max = 4;
  p.n_batch_max = 512;
  p.kv_type = EL_KV_F16;
  p.lora_slots = 0;
  p.lora_max_rank = 0;
  p.lora_pool_type = EL_LORA_POOL_F16;
  return p;
}

el_status el_context_new(el_model* model, const el_context_params* params, el_context** out, el_error* err) {
  return guarded(err, [&] {
    require(model && params && out, "el_context_new: model, params and out must not be NULL");
    *out = nullptr;
    require(params->kv_type == EL_KV_F32 || params->kv_type == EL_KV_F16, "el_context_new: kv_type must be EL_KV_F32 or EL_KV_F16");
    el::ContextParams p;
    p.n_threads = params->n_threads;
    p.n_ctx = params->n_ctx;
    p.n_kv_blocks = params->n_kv_blocks;
    p.kv_block_size = params->kv_block_size;
    p.n_seq_max = params->n_seq_max;
    p.n_batch_max = params->n_batch_max;
    p.kv_type = params->kv_type == EL_KV_F16 ? el::KVType::F16 : el::KVType::F32;
    p.lora_slots = params->lora_slots;
    p.lora_max_rank = params->lora_max_rank;
    const el::lora::LoraPoolTraits* pool = el::lora::find_pool_type(uint32_t(params->lora_pool_type));
    require(pool != nullptr, "lora_pool_type must be EL_LORA_POOL_F16, EL_LORA_POOL_Q8 or EL_LORA_POOL_Q4");
    p.lora_pool_type = pool->type;
    *out = new el_context{model, el::Context(*model->impl, p, current_kernels())};
  });
}

void el_context_free(el_context* ctx) { delete ctx; }

el_status el_decode(el_context* ctx, const el_batch* batch, el_error* err) {
  return guarded(err, [&] {
    require(ctx && batch, "el_decode: ctx and batch must not be NULL");
    el::BatchView b;
    b.n_tokens = batch->n_tokens;
    b.token = batch->token;
    b.pos = batch->pos;
    b.seq_id = batch->seq_id;
    b.lora_slot = batch->lora_slot;
    b.lora_scale = batch->lora_scale;
    b.logits = batch->logits;
    ctx->impl.decode(b);
  });
}

const float* el_get_logits(el_context* ctx, int32_t i) { return ctx ? ctx->impl.logits(i) : nullptr; }

el_status el_seq_clear(el_context* ctx, int32_t seq_id, el_error* err) {
  return guarded(err, [&] {
    require(ctx != nullptr, "el_seq_clear: ctx is NULL");
    ctx->impl.seq_clear(seq_id);
  });
}

int32_t el_seq_length(const el_context* ctx, int32_t seq_id) { return ctx ? ctx->impl.seq_length(seq_id) : -1; }

namespace {

el::lora::LoraPool& lora_pool_of(const el_context* ctx, const char* fn) {
  if (!ctx) el::fail(ErrorKind::InvalidArgument, std::string(fn) + ": ctx is NULL");
  el::lora::LoraPool* pool = ctx->impl.lora_pool();
  if (!pool)
    el::fail(ErrorKind::InvalidArgument, std::string(fn) + ": this context has no LoRA slots (create it with lora_slots > 0)");
  return *pool;
}

void fill_lora_info(const el::lora::SlotInfo& si, el_lora_info* out) {
  if (!out) return;
  *out = el_lora_info{};
  out->loaded = si.loaded ? 1 : 0;
  out->rank = si.rank;
  out->alpha = si.alpha;
  out->factor = si.factor;
  out->bytes = si.bytes;
  copy_str(out->modules, sizeof(out->modules), si.modules);
  out->n_sequences = si.n_sequences;
  copy_str(out->path, sizeof(out->path), si.path);
}

}  // namespace

el_status el_lora_load(el_context* ctx, int32_t slot, const char* path, el_lora_info* out, el_error* err) {
  return guarded(err, [&] {
    el::lora::LoraPool& pool = lora_pool_of(ctx, "el_lora_load");
    require(path != nullptr, "el_lora_load: path is NULL");
    fill_lora_info(pool.load(slot, path), out);
  });
}

el_status el_lora_unload(el_context* ctx, int32_t slot, el_error* err) {
  return guarded(err, [&] { lora_pool_of(ctx, "el_lora_unload").unload(slot); });
}

el_status el_lora_slot_info(const el_context* ctx, int32_t slot, el_lora_info* out, el_error* err) {
  return guarded(err, [&] { fill_lora_info(lora_pool_of(ctx, "el_lora_slot_info").info(slot), out); });
}

el_status el_lora_export(el_context* ctx, int32_t slot, void* buf, size_t cap, size_t* n_out, el_error* err) {
  return guarded(err, [&] {
    el::lora::LoraPool& pool = lora_pool_of(ctx, "el_lora_export");
    require(n_out != nullptr, "el_lora_export: n_out is NULL");
    *n_out = pool.image_size(slot);
    if (buf) *n_out = pool.export_image(slot, static_cast<uint8_t*>(buf), cap);
  });
}

el_status el_lora_import(el_context* ctx, int32_t slot, const void* buf, size_t n, el_lora_info* out, el_error* err) {
  return guarded(err, [&] {
    el::lora::LoraPool& pool = lora_pool_of(ctx, "el_lora_import");
    require(buf != nullptr, "el_lora_import: buf is NULL");
    fill_lora_info(pool.import_image(slot, static_cast<const uint8_t*>(buf), n), out);
  });
}

void el_context_get_stats(const el_context* ctx, el_context_stats* out) {
  if (!out) return;
  *out = el_context_stats{};
  if (!ctx) return;
  const el::KVCache& kv = ctx->impl.kv();
  out->kv_blocks_total = kv.params().n_blocks;
  out->kv_blocks_used = kv.blocks_used();
  out->kv_block_size = kv.params().block_size;
  out->kv_bytes = int64_t(kv.bytes());
  out->n_threads = ctx->impl.params().n_threads;
  const el::ThreadPool::WaitStats w = ctx->impl.pool_wait_stats();
  out->pool_spin_ns = w.spin_ns;
  out->pool_sleep_ns = w.sleep_ns;
  out->pool_sleeps = w.sleeps;
}

}  // extern "C"
