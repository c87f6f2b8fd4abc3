// Model loading: hyperparameters from `<arch>.*` metadata, weights checked against them.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "model.h"
#include "kernels/packed.h"
#include "round_up.h"

namespace el {

namespace {

std::string shape_str(std::initializer_list<int64_t> ne) {
  std::string s = "[";
  bool first = true;
  for (int64_t n : ne) {
    s += (first ? "" : ", ") + std::to_string(n);
    first = false;
  }
  return s + "]";
}

bool has_shape(const GGUFTensor& t, std::initializer_list<int64_t> ne) {
  if (t.n_dims != ne.size()) return false;
  int i = 0;
  for (int64_t n : ne)
    if (t.ne[i++] != n) return false;
  return true;
}

// The tensor `name` with exactly the shape `ne` (ggml order); nullptr when absent and optional.
const GGUFTensor* find_tensor(const GGUFFile& f, const std::string& name, std::initializer_list<int64_t> ne,
                              bool required = true) {
  const GGUFTensor* t = f.tensor(name);
  if (!t) {
    if (!required) return nullptr;
    fail(ErrorKind::BadFile, f.path() + ": tensor '" + name + "' is missing (expected shape " + shape_str(ne) + ")");
  }
  if (!has_shape(*t, ne))
    fail(ErrorKind::BadFile, f.path() + ": tensor '" + name + "' has shape " + t->shape_str() + ", expected " +
                                 shape_str(ne));
  return t;
}

// Small 1-D tensors (norms, biases, RoPE factors) are kept as floats whatever their type.
std::vector<float> to_floats(const GGUFTensor& t) {
  std::vector<float> out(size_t(t.n_elements()));
  if (t.type == TensorType::F32) {
    std::memcpy(out.data(), t.data, out.size() * sizeof(float));
    return out;
  }
  const auto& ks = kernels::scalar();
  const auto to_float = ks.of(t.type).to_float;
  if (!to_float) fail(ErrorKind::Unsupported, "tensor '" + t.name + "': no conversion from type " + type_traits(t.type).name);
  to_float(t.data, out.data(), t.n_elements());
  return out;
}

Linear make_linear(const GGUFTensor* t) {
  Linear l;
  l.tensor = t;
  l.w.type = t->type;
  l.w.data = t->data;
  l.w.n_in = t->ne[0];
  l.w.n_out = t->ne[1];
  l.w.row_bytes = row_size(t->type, t->ne[0]);
  return l;
}

// Rows [first, first + n) of a 2-D tensor (a part of a fused projection) as a projection.
Linear make_linear_rows(const GGUFTensor* t, int64_t first, int64_t n) {
  Linear l = make_linear(t);
  l.w.data = t->data + size_t(first) * l.w.row_bytes;
  l.w.n_out = n;
  return l;
}

// Once a weight has a copy of its own: drops the mapped pages that lie wholly inside the
// original tensor from this process (they are read back from the file if touched again), so
// the weight is not held twice.
void release_mapped(const void* data, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = round_up(uintptr_t(data), page);
  const uintptr_t end = (uintptr_t(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // advice only
}

// Replaces the weight of l by a Packed8 copy (kernels/packed.h) at dst.
void pack_linear(Linear& l, uint8_t* dst) {
  kernels::repack(l.w.type, l.w.data, l.w.n_in, l.w.n_out, dst);
  release_mapped(l.w.data, l.w.row_bytes * size_t(l.w.n_out));
  l.w.data = dst;
  l.w.layout = kernels::WeightLayout::Packed8;
}

// Replaces the weight of l by a copy of its GGUF rows at dst.
void copy_linear(Linear& l, uint8_t* dst) {
  const size_t bytes = l.w.row_bytes * size_t(l.w.n_out);
  std::memcpy(dst, l.w.data, bytes);
  release_mapped(l.w.data, bytes);
  l.w.data = dst;
}

// Threads that place the weights at load: EDGELORA_LOAD_THREADS (for comparisons), else every core.
int load_threads() {
  if (const char* env = std::getenv("EDGELORA_LOAD_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return std::min(n, 64);
  }
  return int(std::clamp(std::thread::hardware_concurrency(), 1u, 64u));
}

int positive_int(const GGUFFile& f, const std::string& key, int64_t v) {
  if (v < 1 || v > (1 << 30)) fail(ErrorKind::BadFile, f.path() + ": " + key + " = " + std::to_string(v) + " is out of range");
  return int(v);
}

// gemma3 (as llama.cpp's loader): embeddings scaled by sqrt(n_embd); with a sliding window,
// layer il slides unless il % pattern == pattern - 1 (pattern: sliding_window_pattern when a
// number, else 6), with RoPE base rope.freq_base_swa (default 10000) and no scaling; the
// attention scale is 1/sqrt(head_dim), except 1/sqrt(n_embd / n_head) for the 62-layer 27B.
void read_gemma3_hparams(const GGUFFile& f, HParams& hp) {
  const std::string a = hp.arch_name + ".";
  hp.embd_scale = std::sqrt(float(hp.n_embd));
  if (hp.n_layer == 62) hp.attn_scale = 1.0f / std::sqrt(float(hp.n_embd / hp.n_head));
  if (auto v = f.get_float_opt(a + "final_logit_softcapping")) hp.logit_softcap = float(*v);
  const int64_t n_swa = f.get_int_opt(a + "attention.sliding_window").value_or(0);
  if (n_swa <= 0) return;
  hp.n_swa = positive_int(f, a + "attention.sliding_window", n_swa);
  int64_t pattern = 6;
  if (const GGUFValue* v = f.find(a + "attention.sliding_window_pattern"); v && v->type != GGUFType::ARRAY)
    pattern = f.get_int(a + "attention.sliding_window_pattern");
  if (pattern < 0) fail(ErrorKind::BadFile, f.path() + ": " + a + "attention.sliding_window_pattern is negative");
  hp.swa_layer.assign(size_t(hp.n_layer), 0);
  for (int il = 0; il < hp.n_layer; ++il) hp.swa_layer[size_t(il)] = pattern == 0 || il % pattern < pattern - 1;
  if (auto v = f.get_float_opt(a + "rope.freq_base_swa")) hp.rope_freq_base_swa = float(*v);
}

}  // namespace

const char* supported_architectures() { return "llama, qwen2, qwen3, phi3, gemma3"; }

const char* module_tensor_name(Module m) {
  switch (m) {
    case Module::Q: return "attn_q";
    case Module::K: return "attn_k";
    case Module::V: return "attn_v";
    case Module::O: return "attn_output";
    case Module::Gate: return "ffn_gate";
    case Module::Up: return "ffn_up";
    case Module::Down: return "ffn_down";
    case Module::Output: return "output";
  }
  return "?";
}

std::unique_ptr<Model> Model::load(const std::string& path, const kernels::KernelSet& pack_for,
                                   const LoadProgress& progress) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = GGUFFile::open(path);
  m->read_hparams();
  m->tokenizer_ = Tokenizer::from_gguf(*m->file_);
  m->hp_.n_vocab = m->tokenizer_->n_vocab();
  m->read_weights();
  m->place_weights(pack_for, progress);
  return m;
}

void Model::read_hparams() {
  const GGUFFile& f = *file_;
  HParams& hp = hp_;
  if (auto type = f.get_string_opt("general.type"); type && *type != "model")
    fail(ErrorKind::Unsupported, f.path() + " is a " + (*type == "adapter" ? "LoRA adapter" : "'" + *type + "' file") +
                                     " (general.type = " + *type + "), not a model");
  hp.arch_name = f.get_string("general.architecture");
  if (hp.arch_name == "llama") hp.arch = Arch::Llama;
  else if (hp.arch_name == "qwen2") hp.arch = Arch::Qwen2;
  else if (hp.arch_name == "qwen3") hp.arch = Arch::Qwen3;
  else if (hp.arch_name == "phi3") hp.arch = Arch::Phi3;
  else if (hp.arch_name == "gemma3") hp.arch = Arch::Gemma3;
  else
    fail(ErrorKind::Unsupported, f.path() + ": architecture '" + hp.arch_name + "' is not supported (supported: " +
                                     supported_architectures() + ")");
  // Only llama GGUFs hold q/k permuted for adjacent-pair rotation; the others rotate halves.
  hp.rope_neox = hp.arch != Arch::Llama;
  hp.qk_norm = hp.arch == Arch::Qwen3 || hp.arch == Arch::Gemma3;
  hp.post_norms = hp.arch == Arch::Gemma3;
  hp.ffn_act = hp.arch == Arch::Gemma3 ? FfnAct::GeluTanh : FfnAct::SiLU;

  const std::string a = hp.arch_name + ".";
  auto req = [&](const std::string& key) { return positive_int(f, a + key, f.get_int(a + key)); };
  hp.n_ctx_train = req("context_length");
  hp.n_embd = req("embedding_length");
  hp.n_layer = req("block_count");
  // Before anything is sized by it (a file claiming 10^9 layers must not allocate for them).
  if (const std::string last = "blk." + std::to_string(hp.n_layer - 1) + ".attn_norm.weight"; !f.tensor(last))
    fail(ErrorKind::BadFile, f.path() + ": tensor '" + last + "' is missing (" + a + "block_count is " +
                                 std::to_string(hp.n_layer) + ")");
  hp.n_ff = req("feed_forward_length");
  hp.n_head = req("attention.head_count");
  hp.n_head_kv = hp.n_head;
  if (auto v = f.get_int_opt(a + "attention.head_count_kv")) hp.n_head_kv = positive_int(f, a + "attention.head_count_kv", *v);
  if (hp.n_head % hp.n_head_kv != 0)
    fail(ErrorKind::BadFile, f.path() + ": head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
                                 std::to_string(hp.n_head_kv));
  if (auto v = f.get_int_opt(a + "attention.key_length")) hp.head_dim = positive_int(f, a + "attention.key_length", *v);
  else if (hp.n_embd % hp.n_head == 0) hp.head_dim = hp.n_embd / hp.n_head;
  else fail(ErrorKind::BadFile, f.path() + ": embedding_length is not a multiple of head_count and key_length is absent");
  if (auto v = f.get_int_opt(a + "attention.value_length"); v && *v != hp.head_dim)
    fail(ErrorKind::Unsupported, f.path() + ": attention.value_length differs from key_length");
  hp.n_rot = hp.head_dim;
  if (auto v = f.get_int_opt(a + "rope.dimension_count")) hp.n_rot = positive_int(f, a + "rope.dimension_count", *v);
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
    fail(ErrorKind::BadFile, f.path() + ": rope.dimension_count " + std::to_string(hp.n_rot) + " must be even and <= head size " +
                                 std::to_string(hp.head_dim));

  hp.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon"));
  if (auto v = f.get_float_opt(a + "rope.freq_base")) hp.rope_freq_base = float(*v);

  // Same rules as llama.cpp: factor from rope.scaling.factor (or the older rope.scale_linear).
  const std::string scaling = f.get_string_opt(a + "rope.scaling.type").value_or("linear");
  double factor = 0;
  if (auto v = f.get_float_opt(a + "rope.scaling.factor")) factor = *v;
  else if (auto w = f.get_float_opt(a + "rope.scale_linear")) factor = *w;
  if (scaling != "linear" && scaling != "none" && factor != 0 && factor != 1)
    fail(ErrorKind::Unsupported, f.path() + ": rope scaling '" + scaling + "' is not supported (linear only)");
  if (factor < 0 || !std::isfinite(factor)) fail(ErrorKind::BadFile, f.path() + ": bad rope scaling factor");
  hp.rope_freq_scale = factor == 0 ? 1.0f : float(1.0 / factor);

  hp.attn_scale = 1.0f / std::sqrt(float(hp.head_dim));
  if (hp.arch == Arch::Gemma3) read_gemma3_hparams(f, hp);
  // phi3's sliding window is ignored, as llama.cpp does (it runs every phi3 layer in full).
}

void Model::read_weights() {
  const GGUFFile& f = *file_;
  const HParams& hp = hp_;
  const int64_t E = hp.n_embd, V = hp.n_vocab, F = hp.n_ff, Q = hp.q_dim(), KV = hp.kv_dim();

  token_embd_ = find_tensor(f, "token_embd.weight", {E, V});
  output_norm_ = to_floats(*find_tensor(f, "output_norm.weight", {E}));
  const GGUFTensor* out = find_tensor(f, "output.weight", {E, V}, false);
  tied_output_ = out == nullptr;
  output_ = make_linear(out ? out : token_embd_);
  if (const GGUFTensor* rf = find_tensor(f, "rope_freqs.weight", {hp.n_rot / 2}, false)) rope_freqs_ = to_floats(*rf);

  const bool biases_required = hp.arch == Arch::Qwen2;
  const int64_t D = hp.head_dim;
  layers_.resize(hp.n_layer);
  for (int il = 0; il < hp.n_layer; ++il) {
    Layer& L = layers_[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    auto norm = [&](const char* name, int64_t n) { return to_floats(*find_tensor(f, p + name + ".weight", {n})); };
    L.attn_norm = norm("attn_norm", E);
    L.ffn_norm = norm("ffn_norm", E);
    if (hp.qk_norm) {
      L.attn_q_norm = norm("attn_q_norm", D);
      L.attn_k_norm = norm("attn_k_norm", D);
    }
    if (hp.post_norms) {
      L.attn_post_norm = norm("post_attention_norm", E);
      L.ffn_post_norm = norm("post_ffw_norm", E);
    }
    const int64_t shapes[kLayerModules][2] = {{E, Q}, {E, KV}, {E, KV}, {Q, E}, {E, F}, {E, F}, {F, E}};
    // phi3 (as llama.cpp's create_tensor_qkv): one attn_qkv, else separate q, k, v.
    const GGUFTensor* qkv = hp.arch == Arch::Phi3 ? find_tensor(f, p + "attn_qkv.weight", {E, Q + 2 * KV}, false) : nullptr;
    if (qkv) {
      L.proj[int(Module::Q)] = make_linear_rows(qkv, 0, Q);
      L.proj[int(Module::K)] = make_linear_rows(qkv, Q, KV);
      L.proj[int(Module::V)] = make_linear_rows(qkv, Q + KV, KV);
      if (const GGUFTensor* b = find_tensor(f, p + "attn_qkv.bias", {Q + 2 * KV}, false)) {
        const std::vector<float> all = to_floats(*b);
        L.proj[int(Module::Q)].bias.assign(all.begin(), all.begin() + Q);
        L.proj[int(Module::K)].bias.assign(all.begin() + Q, all.begin() + Q + KV);
        L.proj[int(Module::V)].bias.assign(all.begin() + Q + KV, all.end());
      }
    }
    // phi3's ffn_up holds gate rows then up rows (llama.cpp's swiglu of the halves).
    const GGUFTensor* gate_up = hp.arch == Arch::Phi3 ? find_tensor(f, p + "ffn_up.weight", {E, 2 * F}) : nullptr;
    if (gate_up) {
      L.proj[int(Module::Gate)] = make_linear_rows(gate_up, 0, F);
      L.proj[int(Module::Up)] = make_linear_rows(gate_up, F, F);
    }
    for (int m = 0; m < kLayerModules; ++m) {
      if ((qkv && m <= int(Module::V)) || (gate_up && (m == int(Module::Gate) || m == int(Module::Up)))) continue;
      const std::string name = p + module_tensor_name(Module(m));
      L.proj[m] = make_linear(find_tensor(f, name + ".weight", {shapes[m][0], shapes[m][1]}));
      if (m <= int(Module::V)) {
        const bool req = biases_required;
        if (const GGUFTensor* b = find_tensor(f, name + ".bias", {shapes[m][1]}, req)) L.proj[m].bias = to_floats(*b);
      }
    }
  }
  if (hp.arch == Arch::Phi3 && (f.tensor("rope_factors_long.weight") || f.tensor("rope_factors_short.weight")))
    fail(ErrorKind::Unsupported, f.path() + ": phi3 long-context RoPE factors (rope_factors_long/short) are not supported");
}

// Copies every projection into one buffer of huge pages, weights_: packed (kernels/packed.h)
// where the path `ks` has packed kernels for its type, so its matmuls read 8 rows at a time,
// else as its GGUF rows. EDGELORA_PACK=0 copies the GGUF rows of every type (for comparisons).
//
// Read through the map, every 4 KiB of a weight is a page of its own and a TLB miss: the 168 F16
// matrices of the benchmark model, in decode order on one thread, streamed at ~22 GB/s from the
// file's pages and at ~27 GB/s from copies in huge pages (the test VM). One buffer for all, not
// one per matrix: a matrix under 2 MiB (attn_q of a 0.5B model) or the tail of a larger one
// would not fill a huge page of its own and would stay in 4 KiB pages.
void Model::place_weights(const kernels::KernelSet& ks, const LoadProgress& progress) {
  const char* env = std::getenv("EDGELORA_PACK");
  const bool packing = !(env && std::strcmp(env, "0") == 0);
  std::vector<Linear*> all;
  for (Layer& L : layers_)
    for (Linear& l : L.proj) all.push_back(&l);
  // A tied output head is token_embd: the embedding lookup reads back only the pages of the
  // rows it needs.
  all.push_back(&output_);
  constexpr size_t kAlign = 64;  // a cache line: kernels stream whole lines from a matrix's start
  size_t total = 0;
  std::vector<size_t> offset;
  auto packed = [&](const Linear& l) {
    return packing && kernels::packs(ks, l.w.type) && l.w.n_out % kernels::kPackRows == 0;
  };
  for (const Linear* l : all) {
    offset.push_back(total);
    const size_t bytes = packed(*l) ? kernels::packed_bytes(l->w.type, l->w.n_in, l->w.n_out)
                                    : l->w.row_bytes * size_t(l->w.n_out);
    total += round_up(bytes, kAlign);
  }
  weights_ = try_alloc_big(total, HugePages::Ask);
  weights_bytes_ = total;
  if (!weights_)
    fail(ErrorKind::OutOfMemory, file_->path() + ": cannot allocate " + std::to_string(total >> 20) +
                                     " MiB for the weights");
  // Matrices are placed by several threads, largest first so that none is left to run alone at
  // the end: the repacks cost CPU (the K-quants' most), and a cold file's pages are read by all
  // of them at once. Progress is reported from the calling thread only (the callback need not be
  // thread-safe).
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto slot_bytes = [&](size_t i) { return (i + 1 < all.size() ? offset[i + 1] : total) - offset[i]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slot_bytes(a) > slot_bytes(b); });
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto place_next = [&]() -> bool {
    const size_t k = next.fetch_add(1, std::memory_order_relaxed);
    if (k >= order.size() || failed.load(std::memory_order_relaxed)) return false;
    const size_t i = order[k];
    try {
      Linear& l = *all[i];
      uint8_t* dst = weights_.get() + offset[i];
      if (packed(l))
        pack_linear(l, dst);
      else
        copy_linear(l, dst);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      failed = true;
      return false;
    }
    done.fetch_add(slot_bytes(i), std::memory_order_relaxed);
    return true;
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < std::min<int>(load_threads(), int(all.size())); ++t)
    helpers.emplace_back([&] { while (place_next()) {} });
  while (place_next())
    if (progress) progress(done.load(std::memory_order_relaxed), total);
  for (std::thread& h : helpers) h.join();
  if (first_error) std::rethrow_exception(first_error);
  if (progress) progress(total, total);
}

}  // namespace el
