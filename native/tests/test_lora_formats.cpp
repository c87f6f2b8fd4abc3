// LoRA adapter files: llama.cpp GGUF (F32/F16/Q8_0) and PEFT directories (F32/F16/BF16) of
// the same adapter give identical slot contents; the factor rules (alpha/r, rslora, GGUF
// alpha 0); and every refusal names its problem (wrong model, rank, truncation, features
// the engine does not support).
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <functional>

#include "check.h"
#include "error.h"
#include "gguf.h"
#include "lora/lora_pool.h"
#include "lora/peft_rope_order.h"
#include "lora_fixtures.h"

using namespace el::lora;
using namespace lora_fixtures;
using el::ErrorKind;

namespace {

std::string g_dir;

// Heads of 6 rows: d = 36 is 6 heads, kv = 12 is 2 KV heads (neither a multiple of 8, so B's
// last 8-row chunk is padded).
ModelShapes shapes(int n_layer, int64_t d, int64_t kv, int64_t ff, const std::string& arch = "llama") {
  return model_shapes(n_layer, d, kv, ff, arch, 6);
}

const ModelShapes kShapes = shapes(2, 36, 12, 53);
const std::vector<Module> kAll = {Module::Q, Module::K, Module::V, Module::O, Module::Gate, Module::Up, Module::Down};

std::string gguf_path(const std::string& name, const GgufFile& g) {
  const std::string p = g_dir + "/" + name + ".gguf";
  write_file(p, serialize(g));
  return p;
}

std::string peft_path(const std::string& name, const std::string& config, const std::vector<SafeTensorSpec>& ts) {
  const std::string p = g_dir + "/" + name;
  write_peft(p, config, ts);
  return p;
}

// A value as the F16 pool stores it.
float as_f16(float v) { return el::fp16_to_fp32(el::fp32_to_fp16(v)); }

// Slot contents equal the adapter's values rounded to F16, and the padding (ranks past the
// adapter's, outputs past n_out in B's last chunk) holds zeros.
bool slot_matches(const LoraPool& pool, int slot, const Adapter& ad, const std::function<float(float)>& round) {
  for (const Pair& p : ad.pairs) {
    const ModuleView v = pool.view(slot, p.layer, p.module);
    if (!v.a || v.rank != p.rank || v.padded % 8 != 0 || v.padded < p.rank) return false;
    const int64_t n_out_padded = (p.n_out + 7) / 8 * 8;
    for (int j = 0; j < v.padded; ++j) {
      const bool pad = j >= p.rank;
      for (int64_t i = 0; i < p.n_in; ++i)
        if (v.a_value(j, i) != (pad ? 0.0f : as_f16(round(p.a[j * p.n_in + i])))) return false;
      for (int64_t o = 0; o < n_out_padded; ++o)
        if (v.b_value(o, j) != (pad || o >= p.n_out ? 0.0f : as_f16(round(p.b[o * p.rank + j])))) return false;
    }
  }
  return true;
}

void test_same_adapter_every_format() {
  const Adapter ad = random_adapter(kShapes, 4, kAll, 42, 8.0f);
  LoraPool pool(kShapes, 5, 16);
  const std::string cfg = peft_config(4, 8.0f);
  const std::string paths[5] = {
      gguf_path("same_f32", gguf_of(ad, "llama", TensorType::F32)),
      gguf_path("same_f16", gguf_of(ad, "llama", TensorType::F16)),
      peft_path("same_peft_f32", cfg, peft_tensors_of(ad, TensorType::F32, kShapes)),
      peft_path("same_peft_f16", cfg, peft_tensors_of(ad, TensorType::F16, kShapes)),
      peft_path("same_peft_bf16", cfg, peft_tensors_of(ad, TensorType::BF16, kShapes)),
  };
  auto same = [](float v) { return v; };
  for (int k = 0; k < 5; ++k) {
    const SlotInfo info = pool.load(k, paths[k]);
    CHECK_MSG(slot_matches(pool, k, ad, same), "slot %d (%s) differs", k, paths[k].c_str());
    CHECK(info.rank == 4 && info.alpha == 8.0f && info.factor == 2.0f && info.modules == "q,k,v,o,gate,up,down");
    CHECK(info.format == (k < 2 ? "gguf" : "peft"));
  }
}

void test_q8_0_gguf() {
  // Q8_0 rows are blocks of 32: n_in and the rank must be multiples of 32.
  const ModelShapes s = shapes(1, 64, 32, 96);
  const Adapter ad = random_adapter(s, 32, {Module::Q, Module::Down}, 5);
  LoraPool pool(s, 1, 32);
  pool.load(0, gguf_path("q8", gguf_of(ad, "llama", TensorType::Q8_0)));
  // Expected: the value each element has after a Q8_0 round trip.
  bool ok = true;
  for (const Pair& p : ad.pairs) {
    auto dequant = [](const std::vector<float>& v) {
      std::vector<uint8_t> q = encode(v, TensorType::Q8_0);
      std::vector<float> out(v.size());
      for (size_t b = 0; b < v.size() / el::QK8_0; ++b) {
        el::block_q8_0 blk;
        std::memcpy(&blk, q.data() + b * sizeof blk, sizeof blk);
        for (int k = 0; k < el::QK8_0; ++k) out[b * el::QK8_0 + k] = el::fp16_to_fp32(blk.d) * blk.qs[k];
      }
      return out;
    };
    const std::vector<float> a = dequant(p.a), b = dequant(p.b);
    const ModuleView v = pool.view(0, p.layer, p.module);
    for (int j = 0; j < p.rank; ++j) {
      for (int64_t i = 0; i < p.n_in; ++i) ok = ok && v.a_value(j, i) == as_f16(a[j * p.n_in + i]);
      for (int64_t o = 0; o < p.n_out; ++o) ok = ok && v.b_value(o, j) == as_f16(b[o * p.rank + j]);
    }
  }
  CHECK(ok);
  CHECK(pool.view(0, 0, Module::K).a == nullptr);
  CHECK(pool.info(0).modules == "q,down");
}

void test_factors() {
  LoraPool pool(kShapes, 1, 16);
  const Adapter ad = random_adapter(kShapes, 4, {Module::Q}, 3, 8.0f);
  pool.load(0, peft_path("rslora", peft_config(4, 8.0f, ", \"use_rslora\": true"), peft_tensors_of(ad, TensorType::F32, kShapes)));
  CHECK(pool.info(0).factor == 4.0f);  // alpha / sqrt(r)
  GgufFile g = gguf_of(ad, "llama", TensorType::F32);
  g.floats.clear();  // no adapter.lora.alpha: llama.cpp applies B(Ax) unscaled
  pool.load(0, gguf_path("noalpha", g));
  CHECK(pool.info(0).factor == 1.0f && pool.info(0).alpha == 0.0f);
  // Trivial per-module patterns, a regex target_modules and fan_in_fan_out are accepted.
  pool.load(0, peft_path("patterns",
                         "{\"r\": 4, \"lora_alpha\": 8, \"rank_pattern\": {\"q_proj\": 4}, \"alpha_pattern\": {}, "
                         "\"target_modules\": \".*\\\\.(q_proj|v_proj)\", \"fan_in_fan_out\": true}",
                         peft_tensors_of(ad, TensorType::F32, kShapes)));
  CHECK(pool.info(0).factor == 2.0f);
  // A target_modules regular expression is not evaluated (the tensors say what is adapted): this
  // one backtracks without bound in std::regex.
  pool.load(0, peft_path("evil_regex", "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": \"(.*.*.*.*)*x\"}",
                         peft_tensors_of(ad, TensorType::F32, kShapes)));
  CHECK(pool.info(0).loaded);
}

void test_refusals() {
  LoraPool pool(kShapes, 1, 8);
  const Adapter ad = random_adapter(kShapes, 4, kAll, 9);
  const GgufFile good = gguf_of(ad, "llama", TensorType::F32);
  const std::string cfg = peft_config(4, 8.0f);
  const std::vector<SafeTensorSpec> st = peft_tensors_of(ad, TensorType::F32, kShapes);

  expect_error([&] { pool.load(0, gguf_path("arch", gguf_of(ad, "qwen2", TensorType::F32))); },
               ErrorKind::InvalidArgument, "adapter architecture 'qwen2' does not match the model's 'llama'");
  {
    GgufFile g = good;
    g.strings[0].second = "model";
    expect_error([&] { pool.load(0, gguf_path("model", g)); }, ErrorKind::BadFile, "not a LoRA adapter");
  }
  expect_error([&] { pool.load(0, gguf_path("shape", gguf_of(random_adapter(shapes(2, 40, 12, 53), 4, kAll, 1), "llama",
                                                                  TensorType::F32))); },
               ErrorKind::InvalidArgument, "is [40, 4] and B 'blk.0.attn_q.weight.lora_b' is [4, 40] (as [row length, rows]); the model needs A [36, r]");
  expect_error([&] { pool.load(0, gguf_path("layers", gguf_of(random_adapter(shapes(3, 36, 12, 53), 4, kAll, 1), "llama",
                                                                   TensorType::F32))); },
               ErrorKind::InvalidArgument, "is for layer 2 but the model has 2 layers");
  expect_error([&] { pool.load(0, gguf_path("rank", gguf_of(random_adapter(kShapes, 16, kAll, 1), "llama",
                                                                 TensorType::F32))); },
               ErrorKind::InvalidArgument, "rank 16 exceeds the slot pool's max rank 8");
  {
    std::vector<uint8_t> bytes = serialize(good);
    bytes.resize(bytes.size() - 100);
    const std::string p = g_dir + "/truncated.gguf";
    write_file(p, bytes);
    expect_error([&] { pool.load(0, p); }, ErrorKind::BadFile, "truncated.gguf");
  }
  {
    GgufFile g = good;
    g.tensors.push_back({"token_embd.weight.lora_a", 36, 4, TensorType::F32, std::vector<float>(36 * 4)});
    expect_error([&] { pool.load(0, gguf_path("embd", g)); }, ErrorKind::Unsupported, "embedding LoRA");
  }
  {
    GgufFile g = good;
    g.tensors.pop_back();  // the last lora_b
    expect_error([&] { pool.load(0, gguf_path("half", g)); }, ErrorKind::BadFile, "has no matching lora_b");
  }
  {
    GgufFile g = good;
    g.tensors[0].ne1 = 2;  // lora_a of rank 2 paired with a rank-4 lora_b
    g.tensors[0].values.resize(36 * 2);
    expect_error([&] { pool.load(0, gguf_path("mixed", g)); }, ErrorKind::InvalidArgument, "needs A [36, r]");
  }
  {
    Adapter mixed = ad;
    mixed.pairs.push_back(random_adapter(shapes(2, 36, 12, 53), 2, {Module::Q}, 4).pairs[0]);
    mixed.pairs.erase(mixed.pairs.begin());  // layer 0 q now has rank 2, the rest rank 4
    expect_error([&] { pool.load(0, gguf_path("ranks", gguf_of(mixed, "llama", TensorType::F32))); },
                 ErrorKind::Unsupported, "mixed ranks are not supported");
  }
  {
    Adapter big = ad;
    big.pairs[3].b[5] = 1.0e6f;
    expect_error([&] { pool.load(0, gguf_path("range", gguf_of(big, "llama", TensorType::F32))); },
                 ErrorKind::Unsupported, "outside the F16 range");
    CHECK(!pool.info(0).loaded);
  }
  {
    // Stored as F16, 1e6 is infinity: F16 values go into the F16 pool as they are, and the
    // check on their exponent bits still refuses it (in B here, and in A).
    Adapter big = ad;
    big.pairs[3].b[5] = 1.0e6f;
    expect_error([&] { pool.load(0, gguf_path("range16", gguf_of(big, "llama", TensorType::F16))); },
                 ErrorKind::Unsupported, "holds inf, outside the F16 range");
    Adapter nan_a = ad;
    nan_a.pairs[1].a[7] = std::nanf("");
    expect_error([&] { pool.load(0, gguf_path("nan16", gguf_of(nan_a, "llama", TensorType::F16))); },
                 ErrorKind::Unsupported, "outside the F16 range");
    CHECK(!pool.info(0).loaded);
  }

  // PEFT
  {
    const std::string p = peft_path("trunc", cfg, st);
    std::vector<uint8_t> bytes = serialize_safetensors(st);
    bytes.resize(bytes.size() - 7);
    write_file(p + "/adapter_model.safetensors", bytes);
    expect_error([&] { pool.load(0, p); }, ErrorKind::BadFile, "truncated safetensors file: tensor '");
    bytes.resize(20);
    write_file(p + "/adapter_model.safetensors", bytes);
    expect_error([&] { pool.load(0, p); }, ErrorKind::BadFile, "truncated safetensors file: header of");
    bytes = serialize_safetensors(st);
    bytes[8] = '[';
    write_file(p + "/adapter_model.safetensors", bytes);
    expect_error([&] { pool.load(0, p); }, ErrorKind::BadFile, "invalid JSON");
  }
  expect_error([&] { pool.load(0, peft_path("mts", "{\"r\": 4, \"lora_alpha\": 8, \"modules_to_save\": [\"lm_head\"]}", st)); },
               ErrorKind::Unsupported, "modules_to_save");
  {
    std::vector<SafeTensorSpec> e = st;
    e.push_back({"base_model.model.model.embed_tokens.lora_embedding_A", {4, 512}, TensorType::F32,
                 std::vector<float>(4 * 512)});
    expect_error([&] { pool.load(0, peft_path("pembd", cfg, e)); }, ErrorKind::Unsupported, "embedding LoRA");
    e = st;
    e.push_back({"base_model.model.lm_head.lora_A.weight", {4, 36}, TensorType::F32, std::vector<float>(4 * 36)});
    expect_error([&] { pool.load(0, peft_path("plmhead", cfg, e)); }, ErrorKind::Unsupported, "output projection");
  }
  expect_error([&] { pool.load(0, peft_path("r8", peft_config(8, 8), st)); }, ErrorKind::BadFile,
               "adapter_config.json says r = 8");
  expect_error([&] { pool.load(0, peft_path("dora", peft_config(4, 8, ", \"use_dora\": true"), st)); },
               ErrorKind::Unsupported, "DoRA");
  expect_error([&] { pool.load(0, peft_path("rp", peft_config(4, 8, ", \"rank_pattern\": {\"q_proj\": 8}"), st)); },
               ErrorKind::Unsupported, "rank_pattern gives 'q_proj' its own value");
  expect_error([&] { pool.load(0, peft_path("tm", "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", st)); },
               ErrorKind::BadFile, "k_proj.lora_A.weight' is for a module not in target_modules");
  expect_error([&] { pool.load(0, g_dir); }, ErrorKind::BadFile, "no adapter_config.json");
  {
    // A 2 MB tensor name: the module key parser must not recurse per character (std::regex did,
    // and overflowed the stack).
    std::vector<SafeTensorSpec> e = st;
    e[0].name = "base_model.model.model.layers.0.mlp." + std::string(2000000, 'a') + ".lora_A.weight";
    expect_error([&] { pool.load(0, peft_path("longname", cfg, e)); }, ErrorKind::Unsupported, "adapts a module this engine does not");
  }
  CHECK(!pool.info(0).loaded);
}

// PEFT q/k lora_B rows: Hugging Face rotate-half order in the file, GGUF interleaved order in
// the slot, for llama only. Expected orders written out by hand.
void test_peft_rope_order() {
  const std::vector<int64_t> two_heads_of_4 = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int64_t r = 0; r < 8; ++r) CHECK(hf_row_to_gguf(r, 8, 2) == two_heads_of_4[size_t(r)]);
  CHECK(peft_permutes_qk("llama") && !peft_permutes_qk("qwen2"));

  // One layer; q has 6 heads of 6 rows, k 2 heads of 6; B[row][j] = row + j / 100 in the file.
  auto tagged = [](const ModelShapes& s) {
    Adapter ad = random_adapter(s, 2, {Module::Q, Module::K, Module::V}, 8);
    for (Pair& p : ad.pairs)
      for (int64_t o = 0; o < p.n_out; ++o)
        for (int j = 0; j < p.rank; ++j) p.b[size_t(o * p.rank + j)] = float(o) + float(j) / 100;
    return ad;
  };
  // GGUF row g of a 6-row head holds Hugging Face row (g % 2) * 3 + g / 2.
  const int64_t head_of_6[6] = {0, 3, 1, 4, 2, 5};
  for (const std::string arch : {"llama", "qwen2"}) {
    const ModelShapes s = shapes(1, 36, 12, 53, arch);
    const Adapter ad = tagged(s);
    // qwen2 shapes write B as is: the rows above are the file's rows.
    const std::vector<SafeTensorSpec> st = peft_tensors_of(ad, TensorType::F32, shapes(1, 36, 12, 53, "qwen2"));
    LoraPool pool(s, 1, 4);
    pool.load(0, peft_path("order_" + arch, peft_config(2, 2.0f), st));
    for (const Pair& p : ad.pairs) {
      const ModuleView v = pool.view(0, p.layer, p.module);
      const bool permuted = arch == "llama" && p.module != Module::V;
      for (int64_t o = 0; o < p.n_out; ++o) {
        const int64_t want_row = permuted ? o / 6 * 6 + head_of_6[o % 6] : o;
        for (int j = 0; j < p.rank; ++j)
          CHECK_MSG(v.b_value(o, j) == as_f16(float(want_row) + float(j) / 100), "%s %s row %lld: %g", arch.c_str(),
                    el::lora::module_short_name(p.module), (long long)o, double(v.b_value(o, j)));
      }
    }
  }
  // The head count is needed, and must split the rows into pairs.
  const Adapter ad = tagged(kShapes);
  const std::vector<SafeTensorSpec> st = peft_tensors_of(ad, TensorType::F32, shapes(1, 36, 12, 53, "qwen2"));
  ModelShapes no_heads = shapes(1, 36, 12, 53);
  no_heads.n_head = no_heads.n_head_kv = 0;
  LoraPool p1(no_heads, 1, 4);
  expect_error([&] { p1.load(0, peft_path("noheads", peft_config(2, 2.0f), st)); }, ErrorKind::Unsupported,
               "gives no llama.attention.head_count");
  ModelShapes odd_heads = shapes(1, 36, 12, 53);
  odd_heads.n_head = 4;  // 36 rows are not 4 heads of rotation pairs
  LoraPool p2(odd_heads, 1, 4);
  expect_error([&] { p2.load(0, peft_path("oddheads", peft_config(2, 2.0f), st)); }, ErrorKind::InvalidArgument,
               "has 36 rows, not a multiple of 2 x 4 heads");
}

void test_stories260k() {
  const std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (access(path.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "SKIP stories260K tests: %s not found\n", path.c_str());
    return;
  }
  const ModelShapes s = shapes_from_gguf(*el::GGUFFile::open(path));
  CHECK(s.arch == "llama" && s.n_layer == 5 && s.n_head == 8 && s.n_head_kv == 4);
  CHECK(s.n_in[int(Module::Q)] == 64 && s.n_out[int(Module::Q)] == 64);
  CHECK(s.n_in[int(Module::K)] == 64 && s.n_out[int(Module::K)] == 32);  // 4 KV heads of 8
  CHECK(s.n_out[int(Module::Gate)] == s.n_in[int(Module::Down)]);
  LoraPool pool(s, 1, 8);
  const Adapter ad = random_adapter(s, 8, kAll, 77);
  pool.load(0, gguf_path("stories", gguf_of(ad, "llama", TensorType::F16)));
  CHECK(slot_matches(pool, 0, ad, [](float v) { return v; }));
  expect_error([&] { shapes_from_gguf(*el::GGUFFile::open(gguf_path("notmodel", gguf_of(ad, "llama", TensorType::F32)))); },
               ErrorKind::BadFile, "missing metadata key 'llama.block_count'");
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/el-test-lora-formats-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_dir = tmpl;
  test_same_adapter_every_format();
  test_q8_0_gguf();
  test_factors();
  test_refusals();
  test_peft_rope_order();
  test_stories260k();
  std::system(("rm -rf " + g_dir).c_str());
  return el_test::test_exit_code();
}
