// Forward pass through the C API on stories260K: greedy ids as llama.cpp gives them,
// batched == one at a time, threads, F16 KV, KV pool exhaustion, bad batches, kernel paths.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "edgelora.h"
#include "model.h"

namespace {

const std::vector<int32_t> kGreedyFromBos = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};

int32_t argmax(const float* v, int n) { return int32_t(std::max_element(v, v + n) - v); }

el_context* make_ctx(el_model* m, int n_threads, el_kv_type kv, int n_seq = 4, int n_kv_blocks = 0, int block = 0,
                     int n_ctx = 256) {
  el_context_params p = el_context_default_params();
  p.n_threads = n_threads;
  p.n_ctx = n_ctx;
  p.n_seq_max = n_seq;
  p.n_kv_blocks = n_kv_blocks;
  p.kv_block_size = block;
  p.n_batch_max = 256;
  p.kv_type = kv;
  el_context* c = nullptr;
  el_error err;
  const el_status s = el_context_new(m, &p, &c, &err);
  CHECK_MSG(s == EL_OK, "%s", err.message);
  return c;
}

struct Batch {
  std::vector<int32_t> token, pos, seq;
  std::vector<int8_t> logits;
  void add(int32_t t, int32_t p, int32_t s, bool want) {
    token.push_back(t);
    pos.push_back(p);
    seq.push_back(s);
    logits.push_back(want ? 1 : 0);
  }
  el_batch view() const {
    el_batch b{};
    b.n_tokens = int32_t(token.size());
    b.token = token.data();
    b.pos = pos.data();
    b.seq_id = seq.data();
    b.logits = logits.data();
    return b;
  }
};

el_status decode(el_context* c, const Batch& b, el_error* err) {
  const el_batch v = b.view();
  return el_decode(c, &v, err);
}

std::vector<int32_t> greedy_from_bos(el_model* m, el_context* c, int n) {
  std::vector<int32_t> out;
  int32_t tok = 1;  // BOS
  for (int i = 0; i < n; ++i) {
    Batch b;
    b.add(tok, i, 0, true);
    el_error err;
    if (decode(c, b, &err) != EL_OK) {
      CHECK_MSG(false, "%s", err.message);
      break;
    }
    tok = argmax(el_get_logits(c, 0), 512);
    out.push_back(tok);
  }
  return out;
}

std::vector<int32_t> tokenize(el_model* m, const std::string& text) {
  std::vector<int32_t> ids(256);
  int32_t n = 0;
  el_error err;
  CHECK(el_tokenize(m, text.data(), text.size(), 1, 0, ids.data(), int32_t(ids.size()), &n, &err) == EL_OK);
  ids.resize(size_t(std::min<int32_t>(n, 256)));
  return ids;
}

// Greedy continuation of several prompts: per step, the logits of each sequence.
using Trace = std::vector<std::vector<std::vector<float>>>;  // [seq][step][vocab]

// All prompts prefilled in one batch, then one token per sequence per step, together.
Trace run_batched(el_context* c, const std::vector<std::vector<int32_t>>& prompts, int steps, int n_vocab = 512) {
  const int n_seq = int(prompts.size());
  Trace tr(n_seq);
  Batch b;
  for (int s = 0; s < n_seq; ++s)
    for (size_t i = 0; i < prompts[s].size(); ++i) b.add(prompts[s][i], int32_t(i), s, i + 1 == prompts[s].size());
  for (int step = 0; step <= steps; ++step) {
    el_error err;
    if (decode(c, b, &err) != EL_OK) {
      CHECK_MSG(false, "%s", err.message);
      return tr;
    }
    Batch next;
    for (int s = 0; s < n_seq; ++s) {
      const float* l = el_get_logits(c, s);
      tr[s].emplace_back(l, l + n_vocab);
      if (step < steps) next.add(argmax(l, n_vocab), el_seq_length(c, s), s, true);
    }
    b = next;
  }
  return tr;
}

// Each sequence on its own: prefill, then one token per decode call.
Trace run_alone(el_context* c, const std::vector<std::vector<int32_t>>& prompts, int steps) {
  Trace tr(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    Batch b;
    for (size_t i = 0; i < prompts[s].size(); ++i) b.add(prompts[s][i], int32_t(i), int32_t(s), false);
    b.logits.back() = 1;
    for (int step = 0; step <= steps; ++step) {
      el_error err;
      if (decode(c, b, &err) != EL_OK) {
        CHECK_MSG(false, "%s", err.message);
        return tr;
      }
      const float* l = el_get_logits(c, 0);
      tr[s].emplace_back(l, l + 512);
      b = Batch();
      b.add(argmax(l, 512), el_seq_length(c, int32_t(s)), int32_t(s), true);
    }
  }
  return tr;
}

double max_diff(const Trace& a, const Trace& b, bool* same_ids) {
  double d = 0;
  *same_ids = a.size() == b.size();
  for (size_t s = 0; s < a.size() && s < b.size(); ++s) {
    if (a[s].size() != b[s].size()) *same_ids = false;
    for (size_t t = 0; t < a[s].size() && t < b[s].size(); ++t) {
      if (argmax(a[s][t].data(), 512) != argmax(b[s][t].data(), 512)) *same_ids = false;
      for (int v = 0; v < 512; ++v) d = std::max(d, double(std::fabs(a[s][t][v] - b[s][t][v])));
    }
  }
  return d;
}

void test_info(el_model* m) {
  el_model_info info;
  el_error err;
  CHECK(el_model_get_info(m, &info, &err) == EL_OK);
  CHECK(std::strcmp(info.arch, "llama") == 0);
  CHECK(info.n_vocab == 512 && info.n_embd == 64 && info.n_layer == 5 && info.n_ff == 172);
  CHECK(info.n_head == 8 && info.n_head_kv == 4 && info.head_dim == 8);
  CHECK(info.rope_neox == 0 && info.tied_output == 0);
  CHECK_MSG(std::strcmp(info.weight_types, "f32:48") == 0, "%s", info.weight_types);
  CHECK(std::strcmp(info.tokenizer, "llama") == 0);
  CHECK(info.bos == 1 && info.eos == 2);
  CHECK(info.n_params == 64 * 512 * 2 + 64 + 5 * (64 * 64 * 2 + 64 * 32 * 2 + 64 * 172 * 3 + 64 * 2));
}

void test_greedy(el_model* m) {
  el_context* c = make_ctx(m, 1, EL_KV_F32);
  CHECK(greedy_from_bos(m, c, 10) == kGreedyFromBos);
  el_context_free(c);
}

void test_batched_equals_alone(el_model* m, const std::vector<std::vector<int32_t>>& prompts) {
  el_context* a = make_ctx(m, 1, EL_KV_F32);
  el_context* b = make_ctx(m, 1, EL_KV_F32);
  const Trace alone = run_alone(a, prompts, 12);
  const Trace together = run_batched(b, prompts, 12);
  bool same = false;
  const double d = max_diff(alone, together, &same);
  CHECK(same);
  CHECK_MSG(d <= 1e-5, "batched vs alone: max logit difference %g", d);
  el_context_free(a);
  el_context_free(b);
}

void test_threads(el_model* m, const std::vector<std::vector<int32_t>>& prompts) {
  el_context* one = make_ctx(m, 1, EL_KV_F32);
  el_context* two = make_ctx(m, 2, EL_KV_F32);
  const Trace t1 = run_batched(one, prompts, 8);
  const Trace t2 = run_batched(two, prompts, 8);
  bool same = false;
  CHECK(max_diff(t1, t2, &same) == 0.0);
  CHECK(same);
  el_context_free(one);
  el_context_free(two);
}

void test_f16_kv(el_model* m, const std::vector<std::vector<int32_t>>& prompts) {
  el_context* f32 = make_ctx(m, 1, EL_KV_F32);
  el_context* f16 = make_ctx(m, 1, EL_KV_F16);
  const Trace a = run_batched(f32, prompts, 8);
  const Trace b = run_batched(f16, prompts, 8);
  bool same = false;
  const double d = max_diff(a, b, &same);
  CHECK(same);
  CHECK_MSG(d > 0 && d < 2e-2, "F16 vs F32 KV: max logit difference %g", d);
  el_context_free(f32);
  el_context_free(f16);
}

void test_kv_exhaustion(el_model* m) {
  // 3 blocks of 4 tokens; sequence 0 takes 2 of them.
  el_context* c = make_ctx(m, 1, EL_KV_F32, 2, 3, 4);
  Batch b;
  for (int i = 0; i < 8; ++i) b.add(1 + i, i, 0, i == 7);
  el_error err;
  CHECK(decode(c, b, &err) == EL_OK);
  Batch big;  // sequence 1 needs 2 blocks, 1 is free
  for (int i = 0; i < 5; ++i) big.add(1 + i, i, 1, i == 4);
  CHECK(decode(c, big, &err) == EL_ERR_OUT_OF_MEMORY);
  CHECK_MSG(std::strstr(err.message, "KV cache pool exhausted") != nullptr, "%s", err.message);
  el_context_stats st;
  el_context_get_stats(c, &st);
  CHECK(st.kv_blocks_total == 3 && st.kv_blocks_used == 2 && st.kv_block_size == 4);
  CHECK(el_seq_length(c, 1) == 0);
  CHECK(el_seq_clear(c, 0, &err) == EL_OK);
  el_context_get_stats(c, &st);
  CHECK(st.kv_blocks_used == 0 && el_seq_length(c, 0) == 0);
  CHECK(decode(c, big, &err) == EL_OK);
  CHECK(el_seq_length(c, 1) == 5);
  el_context_free(c);

  // n_ctx caps a sequence with its own message.
  el_context* small = make_ctx(m, 1, EL_KV_F32, 1, 0, 4, 6);
  Batch seven;
  for (int i = 0; i < 7; ++i) seven.add(1, i, 0, i == 6);
  CHECK(decode(small, seven, &err) == EL_ERR_INVALID_ARGUMENT);
  CHECK_MSG(std::strstr(err.message, "n_ctx") != nullptr, "%s", err.message);
  CHECK(el_seq_length(small, 0) == 0);
  el_context_free(small);
}

void test_bad_batches(el_model* m) {
  el_context* c = make_ctx(m, 1, EL_KV_F32, 2);
  el_context* ref = make_ctx(m, 1, EL_KV_F32, 2);
  Batch start;
  start.add(1, 0, 0, true);
  el_error err;
  CHECK(decode(c, start, &err) == EL_OK);
  CHECK(decode(ref, start, &err) == EL_OK);

  auto rejected = [&](const Batch& b, const char* needle) {
    el_context_stats before, after;
    el_context_get_stats(c, &before);
    const el_status s = decode(c, b, &err);
    CHECK_MSG(s == EL_ERR_INVALID_ARGUMENT, "status %d for '%s'", int(s), needle);
    CHECK_MSG(std::strstr(err.message, needle) != nullptr, "'%s' not in '%s'", needle, err.message);
    el_context_get_stats(c, &after);
    CHECK(before.kv_blocks_used == after.kv_blocks_used);
    CHECK(el_seq_length(c, 0) == 1 && el_seq_length(c, 1) == 0);
  };
  Batch gap;  // valid token for seq 1 first, then a gap in seq 0
  gap.add(5, 0, 1, false);
  gap.add(403, 2, 0, true);
  rejected(gap, "pos 2");
  Batch seq;
  seq.add(403, 1, 0, false);
  seq.add(403, 0, 2, true);
  rejected(seq, "seq_id 2");
  Batch tok;
  tok.add(512, 1, 0, true);
  rejected(tok, "token id 512");
  Batch slot;
  slot.add(403, 1, 0, true);
  const int32_t bad_slot = 0;  // the context has no LoRA slots
  el_batch v = slot.view();
  v.lora_slot = &bad_slot;
  el_context_stats before;
  el_context_get_stats(c, &before);
  CHECK(el_decode(c, &v, &err) == EL_ERR_INVALID_ARGUMENT);
  CHECK_MSG(std::strstr(err.message, "lora_slot 0") != nullptr, "%s", err.message);
  CHECK(el_seq_length(c, 0) == 1);
  el_batch empty{};
  CHECK(el_decode(c, &empty, &err) == EL_ERR_INVALID_ARGUMENT);
  CHECK(el_decode(nullptr, &empty, &err) == EL_ERR_INVALID_ARGUMENT);

  // After the rejections, the context computes exactly what an untouched one does.
  Batch next;
  next.add(403, 1, 0, true);
  CHECK(decode(c, next, &err) == EL_OK);
  CHECK(decode(ref, next, &err) == EL_OK);
  CHECK(std::memcmp(el_get_logits(c, 0), el_get_logits(ref, 0), 512 * sizeof(float)) == 0);
  CHECK(el_get_logits(c, 1) == nullptr && el_get_logits(c, -1) == nullptr);
  el_context_free(c);
  el_context_free(ref);
}

void test_kernel_paths(el_model* m) {
  const std::string initial = el_kernel_path();
  for (const char* name : {"scalar", "avx2", "neon", "neon-dotprod"}) {
    el_error err;
    if (el_set_kernel_path(name, &err) != EL_OK) {
      CHECK(std::strstr(err.message, "not available") != nullptr);
      continue;
    }
    CHECK(std::strcmp(el_kernel_path(), name) == 0);
    el_context* c = make_ctx(m, 1, EL_KV_F16);
    CHECK_MSG(greedy_from_bos(m, c, 10) == kGreedyFromBos, "kernel path %s", name);
    el_context_free(c);
  }
  el_error err;
  CHECK(el_set_kernel_path("no-such-path", &err) == EL_ERR_UNSUPPORTED);
  CHECK(el_set_kernel_path(initial.c_str(), &err) == EL_OK);
}

void test_load_errors() {
  el_model_params p{"/nonexistent/model.gguf"};
  el_model* m = nullptr;
  el_error err;
  CHECK(el_model_load(&p, &m, &err) != EL_OK && m == nullptr);
  CHECK(std::strstr(err.message, "/nonexistent/model.gguf") != nullptr);
  CHECK(el_model_load(nullptr, &m, &err) == EL_ERR_INVALID_ARGUMENT);
}

std::vector<char> read_all(const std::string& path) {
  std::vector<char> v;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) v.insert(v.end(), buf, buf + n);
    std::fclose(f);
  }
  return v;
}

// Loads a copy of the model with its header patched by `patch`; returns the load error.
template <class F>
std::string load_patched(const std::string& path, F&& patch) {
  std::vector<char> bytes = read_all(path);
  patch(bytes);
  const std::string tmp = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/el_test_model_" +
                          std::to_string(std::rand()) + ".gguf";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot write " + tmp;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  el_model_params p{tmp.c_str()};
  el_model* m = nullptr;
  el_error err;
  const el_status s = el_model_load(&p, &m, &err);
  std::remove(tmp.c_str());
  el_model_free(m);
  return s == EL_OK ? "" : err.message;
}

// Offset just past the tensor-info name `name` (its n_dims follows).
size_t after_name(const std::vector<char>& bytes, const std::string& name) {
  const std::string key = std::string(1, char(name.size())) + std::string(7, '\0') + name;
  auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  return it == bytes.end() ? 0 : size_t(it - bytes.begin()) + key.size();
}

void test_bad_weights(const std::string& path) {
  // blk.0.attn_k.weight stored as [32, 64] instead of [64, 32] (same size, so the file is valid).
  std::string e = load_patched(path, [](std::vector<char>& b) {
    const size_t at = after_name(b, "blk.0.attn_k.weight");
    CHECK(at != 0);
    if (!at) return;
    const uint64_t ne[2] = {32, 64};
    std::memcpy(&b[at + 4], ne, sizeof ne);
  });
  CHECK_MSG(e.find("'blk.0.attn_k.weight' has shape [32, 64], expected [64, 32]") != std::string::npos, "%s", e.c_str());
  e = load_patched(path, [](std::vector<char>& b) {
    const size_t at = after_name(b, "blk.3.ffn_up.weight");
    CHECK(at != 0);
    if (at) std::memcpy(&b[at - 9], "XX", 2);  // "blk.3.ffn_XX.weight"
  });
  CHECK_MSG(e.find("'blk.3.ffn_up.weight' is missing (expected shape [64, 172])") != std::string::npos, "%s", e.c_str());
  // A block_count the tensors do not bear out is refused before anything is sized by it (found
  // by fuzz_gguf: 2^30 layers once allocated 189 GB of layer records).
  e = load_patched(path, [](std::vector<char>& b) {
    const size_t at = after_name(b, "llama.block_count");  // u32 value type, then the value
    CHECK(at != 0 && b[at] == 4);
    const uint32_t layers = 1u << 30;
    if (at) std::memcpy(&b[at + 4], &layers, 4);
  });
  CHECK_MSG(e.find("'blk.1073741823.attn_norm.weight' is missing (llama.block_count is 1073741824)") != std::string::npos,
            "%s", e.c_str());
}

el_model* load_model(const std::string& path) {
  el_model_params p{path.c_str()};
  el_model* m = nullptr;
  el_error err;
  CHECK_MSG(el_model_load(&p, &m, &err) == EL_OK, "%s", err.message);
  return m;
}

// A quantized model (EL_TEST_QUANT_MODEL: a synthetic Q8_0 llama written by the test scripts):
// where the kernel path packs Q8_0 (kernels/packed.h), the loader repacks every layer matrix, and
// the packed kernels give the same greedy ids and logits (within float rounding) as the same
// path without packing (EDGELORA_PACK=0): decode of one sequence (GEMV) and of three (tiles).
void test_packed_model() {
  const char* path = std::getenv("EL_TEST_QUANT_MODEL");
  if (!path) {
    std::fprintf(stderr, "SKIP packed model: EL_TEST_QUANT_MODEL is not set\n");
    return;
  }
  el_model* packed = load_model(path);
  setenv("EDGELORA_PACK", "0", 1);
  el_model* plain = load_model(path);
  unsetenv("EDGELORA_PACK");
  if (!packed || !plain) return;
  el_model_info pi, ui;
  el_error err;
  CHECK(el_model_get_info(packed, &pi, &err) == EL_OK && el_model_get_info(plain, &ui, &err) == EL_OK);
  const std::string path_name = el_kernel_path();
  const bool packs_q8 = path_name == "avx512-vnni" || path_name == "avx2-vnni" || path_name == "neon-dotprod";
  const std::string expected = packs_q8 ? "q8_0:" + std::to_string(7 * pi.n_layer) : "";
  CHECK_MSG(pi.packed_types == expected, "path %s packed '%s', expected '%s'", path_name.c_str(), pi.packed_types,
            expected.c_str());
  CHECK_MSG(std::string(ui.packed_types).empty(), "EDGELORA_PACK=0 still packed '%s'", ui.packed_types);

  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 200, 31}, {1, 77}, {1, 300, 301, 302, 303, 304, 305}};
  for (size_t n_seq : {size_t(1), size_t(3)}) {
    const std::vector<std::vector<int32_t>> ps(prompts.begin(), prompts.begin() + n_seq);
    el_context* a = make_ctx(packed, 1, EL_KV_F32);
    el_context* b = make_ctx(plain, 1, EL_KV_F32);
    const Trace ta = run_batched(a, ps, 8, pi.n_vocab), tb = run_batched(b, ps, 8, ui.n_vocab);
    double worst = 0;
    int id_mismatches = 0;
    for (size_t s = 0; s < ta.size() && s < tb.size(); ++s)
      for (size_t k = 0; k < ta[s].size() && k < tb[s].size(); ++k) {
        id_mismatches += argmax(ta[s][k].data(), pi.n_vocab) != argmax(tb[s][k].data(), pi.n_vocab);
        for (int v = 0; v < pi.n_vocab; ++v) worst = std::max(worst, double(std::fabs(ta[s][k][v] - tb[s][k][v])));
      }
    CHECK_MSG(ta.size() == n_seq && tb.size() == n_seq && id_mismatches == 0 && worst < 1e-3,
              "%zu sequence(s): %d greedy mismatches, max |logit delta| %g", n_seq, id_mismatches, worst);
    std::fprintf(stderr, "packed model (%s, %s): %zu sequence(s), max |logit delta| vs unpacked %.3g\n",
                 path_name.c_str(), expected.empty() ? "nothing packed" : expected.c_str(), n_seq, worst);
    el_context_free(a);
    el_context_free(b);
  }
  el_model_free(packed);
  el_model_free(plain);
}

}  // namespace

// Every projection, the output head included (tied or not), is read from the model's own copy
// (model_loader.cpp: place_weights), not from the file's pages, with no two overlapping; a
// GGUF-row copy holds the tensor's bytes (read through the map after its pages were released,
// the tensor comes from the file again).
void test_weights_placed(const std::string& path) {
  const std::unique_ptr<el::Model> m = el::Model::load(path);
  const uint8_t* begin = m->weights();
  const uint8_t* end = begin + m->weights_bytes();
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  auto check = [&](const el::Linear& l, const char* what, int layer) {
    const size_t bytes = l.w.row_bytes * size_t(l.w.n_out);
    const uint8_t* p = static_cast<const uint8_t*>(l.w.data);
    CHECK_MSG(begin && p >= begin && p + bytes <= end, "%s: %s of layer %d is not in the weights' buffer",
              path.c_str(), what, layer);
    CHECK_MSG(reinterpret_cast<uintptr_t>(p) % 64 == 0, "%s: %s of layer %d is not 64-byte aligned", path.c_str(),
              what, layer);
    spans.emplace_back(p, p + bytes);
    if (l.w.layout != el::kernels::WeightLayout::Packed8)
      CHECK_MSG(std::memcmp(p, l.tensor->data, bytes) == 0, "%s: %s of layer %d differs from the file", path.c_str(),
                what, layer);
  };
  for (int il = 0; il < m->hparams().n_layer; ++il)
    for (int mi = 0; mi < el::kLayerModules; ++mi)
      check(m->linear(il, el::Module(mi)), el::module_tensor_name(el::Module(mi)), il);
  check(m->linear(0, el::Module::Output), "output", -1);
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) CHECK_MSG(spans[i - 1].second <= spans[i].first, "%s: two weights overlap", path.c_str());
}

// Weights placed by several threads (largest matrix first) are byte for byte those placed by one,
// and progress is reported from the loading thread only, never going back, ending at the total.
void test_load_threads(const std::string& path) {
  struct Load {
    std::unique_ptr<el::Model> model;
    std::vector<std::pair<uint64_t, uint64_t>> reports;
    bool other_thread = false;
  };
  auto load = [&](const char* threads) {
    Load r;
    setenv("EDGELORA_LOAD_THREADS", threads, 1);
    const std::thread::id caller = std::this_thread::get_id();
    r.model = el::Model::load(path, el::kernels::best(), [&](uint64_t done, uint64_t total) {
      r.other_thread |= std::this_thread::get_id() != caller;
      r.reports.emplace_back(done, total);
    });
    unsetenv("EDGELORA_LOAD_THREADS");
    return r;
  };
  const Load one = load("1"), four = load("4");
  CHECK_MSG(one.model->weights_bytes() == four.model->weights_bytes() &&
                std::memcmp(one.model->weights(), four.model->weights(), one.model->weights_bytes()) == 0,
            "%s: weights placed by 4 threads differ from those placed by 1", path.c_str());
  for (const Load* r : {&one, &four}) {
    CHECK_MSG(!r->other_thread, "%s: progress called from a helper thread", path.c_str());
    const uint64_t total = r->model->weights_bytes();
    CHECK_MSG(!r->reports.empty() && r->reports.back() == std::make_pair(total, total),
              "%s: the last progress report is not (total, total)", path.c_str());
    for (size_t i = 1; i < r->reports.size(); ++i)
      CHECK_MSG(r->reports[i].first >= r->reports[i - 1].first && r->reports[i].second == total,
                "%s: progress went back or changed its total", path.c_str());
  }
}

int main() {
  test_load_errors();
  test_packed_model();
  if (const char* q = std::getenv("EL_TEST_QUANT_MODEL")) {
    test_weights_placed(q);
    setenv("EDGELORA_PACK", "0", 1);
    test_weights_placed(q);
    unsetenv("EDGELORA_PACK");
    test_load_threads(q);
  }
  const std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    std::fprintf(stderr, "SKIP: %s not found (../shared is absent)\n", path.c_str());
    return el_test::test_exit_code();
  }
  el_model_params p{path.c_str()};
  el_model* m = nullptr;
  el_error err;
  if (el_model_load(&p, &m, &err) != EL_OK) {
    CHECK_MSG(false, "%s", err.message);
    return el_test::test_exit_code();
  }
  std::string long_text;
  for (int i = 0; i < 6; ++i) long_text += "The little dog ran to the park and played with a red ball. ";
  const std::vector<std::vector<int32_t>> prompts = {
      tokenize(m, "Once upon a time"), tokenize(m, "Hello world!"), tokenize(m, long_text)};
  CHECK(prompts[0] == std::vector<int32_t>({1, 403, 407, 261, 378}));

  test_bad_weights(path);
  test_weights_placed(path);
  test_load_threads(path);
  test_info(m);
  test_greedy(m);
  test_batched_equals_alone(m, prompts);
  test_threads(m, prompts);
  test_f16_kv(m, prompts);
  test_kv_exhaustion(m);
  test_bad_batches(m);
  test_kernel_paths(m);
  el_model_free(m);
  return el_test::test_exit_code();
}
