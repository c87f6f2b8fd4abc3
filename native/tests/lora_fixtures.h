// Test fixtures for the LoRA tests: a model's adapted shapes, a random adapter in memory, and
// writers of it as a llama.cpp LoRA GGUF (F32/F16/Q8_0) and as a PEFT directory (F32/F16/BF16),
// plus hooks to add the odd tensor or config key a refusal test needs, and the check that a
// refusal is the one expected.
#pragma once
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "error.h"
#include "lora/lora_shapes.h"
#include "tensor_types.h"

namespace lora_fixtures {

using el::TensorType;
using el::lora::Module;
using el::lora::ModelShapes;

// A llama-family model's adapted shapes: hidden size d, KV width kv, FFN width ff. `head_rows`:
// rows per attention head, which the PEFT q/k row order depends on (0: head counts unknown).
inline ModelShapes model_shapes(int n_layer, int64_t d, int64_t kv, int64_t ff, const std::string& arch = "llama",
                                int head_rows = 0) {
  ModelShapes s;
  s.arch = arch;
  s.n_layer = n_layer;
  if (head_rows > 0) s.n_head = int(d / head_rows), s.n_head_kv = int(kv / head_rows);
  const int64_t n_in[el::lora::kNumModules] = {d, d, d, d, d, d, ff};
  const int64_t n_out[el::lora::kNumModules] = {d, kv, kv, d, ff, ff, d};
  for (int m = 0; m < el::lora::kNumModules; ++m) s.n_in[m] = n_in[m], s.n_out[m] = n_out[m];
  return s;
}

// `fn` must throw an el::Error of `kind` whose message contains `needle`.
inline void expect_error(const std::function<void()>& fn, el::ErrorKind kind, const std::string& needle) {
  try {
    fn();
    CHECK_MSG(false, "expected an error containing '%s'", needle.c_str());
  } catch (const el::Error& e) {
    CHECK_MSG(e.kind == kind && std::string(e.what()).find(needle) != std::string::npos, "got '%s' (kind %d)",
              e.what(), int(e.kind));
  }
}

struct Pair {
  int layer;
  Module module;
  int64_t n_in, n_out;
  int rank;
  std::vector<float> a;  // rank rows of n_in
  std::vector<float> b;  // n_out rows of rank
};

struct Adapter {
  float alpha = 8;
  std::vector<Pair> pairs;
};

// Values k/1024 with |k| < 256: exact in F32, F16 and BF16, so every format holds the same numbers.
inline Adapter random_adapter(const ModelShapes& s, int rank, const std::vector<Module>& modules, uint32_t seed,
                              float alpha = 8) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> k(-255, 255);
  Adapter ad;
  ad.alpha = alpha;
  for (int l = 0; l < s.n_layer; ++l)
    for (Module m : modules) {
      Pair p{l, m, s.n_in[int(m)], s.n_out[int(m)], rank, {}, {}};
      p.a.resize(size_t(rank * p.n_in));
      p.b.resize(size_t(rank * p.n_out));
      for (float& v : p.a) v = float(k(rng)) / 1024.0f;
      for (float& v : p.b) v = float(k(rng)) / 1024.0f;
      ad.pairs.push_back(std::move(p));
    }
  return ad;
}

// ---- bytes ------------------------------------------------------------------

struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
};

inline std::vector<uint8_t> encode(const std::vector<float>& v, TensorType t) {
  Bytes out;
  if (t == TensorType::F32) {
    for (float f : v) out.put(f);
  } else if (t == TensorType::F16) {
    for (float f : v) out.put(el::fp32_to_fp16(f));
  } else if (t == TensorType::BF16) {
    for (float f : v) out.put(el::fp32_to_bf16(f));
  } else {  // Q8_0, blocks of 32 along the row
    for (size_t i = 0; i < v.size(); i += el::QK8_0) {
      float amax = 0;
      for (int k = 0; k < el::QK8_0; ++k) amax = std::max(amax, std::fabs(v[i + k]));
      const float d = amax / 127.0f;
      el::block_q8_0 blk;
      blk.d = el::fp32_to_fp16(d);
      for (int k = 0; k < el::QK8_0; ++k) blk.qs[k] = int8_t(d == 0 ? 0 : std::lround(v[i + k] / d));
      out.put(blk);
    }
  }
  return out.b;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) { std::perror(path.c_str()); std::abort(); }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// ---- GGUF ---------------------------------------------------------------------

struct GgufTensor {
  std::string name;
  int64_t ne0, ne1;
  TensorType type;
  std::vector<float> values;
};

struct GgufFile {
  std::vector<std::pair<std::string, std::string>> strings;  // string metadata
  std::vector<std::pair<std::string, float>> floats;         // f32 metadata
  std::vector<GgufTensor> tensors;
};

inline GgufFile gguf_of(const Adapter& ad, const std::string& arch, TensorType type) {
  GgufFile g;
  g.strings = {{"general.type", "adapter"}, {"general.architecture", arch}, {"adapter.type", "lora"}};
  g.floats = {{"adapter.lora.alpha", ad.alpha}};
  for (const Pair& p : ad.pairs) {
    const std::string base = "blk." + std::to_string(p.layer) + "." + el::lora::module_gguf_name(p.module) + ".weight";
    g.tensors.push_back({base + ".lora_a", p.n_in, p.rank, type, p.a});
    g.tensors.push_back({base + ".lora_b", p.rank, p.n_out, type, p.b});
  }
  return g;
}

inline std::vector<uint8_t> serialize(const GgufFile& g) {
  Bytes f;
  f.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(g.tensors.size());
  f.put<uint64_t>(g.strings.size() + g.floats.size());
  for (const auto& [k, v] : g.strings) f.str(k).put<uint32_t>(8).str(v);
  for (const auto& [k, v] : g.floats) f.str(k).put<uint32_t>(6).put(v);
  std::vector<std::vector<uint8_t>> data;
  uint64_t off = 0;
  for (const GgufTensor& t : g.tensors) {
    data.push_back(encode(t.values, t.type));
    f.str(t.name).put<uint32_t>(2).put<int64_t>(t.ne0).put<int64_t>(t.ne1).put<uint32_t>(uint32_t(t.type)).put(off);
    off = (off + data.back().size() + 31) / 32 * 32;
  }
  while (f.b.size() % 32) f.put<uint8_t>(0);
  for (const auto& d : data) {
    f.b.insert(f.b.end(), d.begin(), d.end());
    while (f.b.size() % 32) f.put<uint8_t>(0);
  }
  return f.b;
}

// `ad` as a llama F32 LoRA GGUF, <dir>/<name>.gguf; its path.
inline std::string write_adapter_gguf(const std::string& dir, const std::string& name, const Adapter& ad) {
  const std::string path = dir + "/" + name + ".gguf";
  write_file(path, serialize(gguf_of(ad, "llama", TensorType::F32)));
  return path;
}

// ---- PEFT ---------------------------------------------------------------------

struct SafeTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorType type;
  std::vector<float> values;
};

// B (n_out rows of `rank`) in GGUF row order -> Hugging Face order, for a llama model's q/k:
// per head of d rows, GGUF row 2i + j holds what Hugging Face keeps at row j*d/2 + i.
inline std::vector<float> gguf_rows_to_hf(const std::vector<float>& b, int64_t n_out, int rank, int n_head) {
  std::vector<float> hf(b.size());
  const int64_t d = n_out / n_head;
  for (int64_t g = 0; g < n_out; ++g) {
    const int64_t head = g / d, i = (g % d) / 2, j = (g % d) % 2;
    const int64_t h = head * d + j * (d / 2) + i;
    std::copy(b.begin() + g * rank, b.begin() + (g + 1) * rank, hf.begin() + h * rank);
  }
  return hf;
}

// The adapter as a PEFT file holds it: in Hugging Face layout, so for a llama model `s` the
// q/k lora_B rows are in rotate-half order (the loader must permute them back).
inline std::vector<SafeTensorSpec> peft_tensors_of(const Adapter& ad, TensorType type, const ModelShapes& s) {
  std::vector<SafeTensorSpec> out;
  for (const Pair& p : ad.pairs) {
    const std::string base = "base_model.model.model.layers." + std::to_string(p.layer) +
                             (el::lora::module_is_attention(p.module) ? ".self_attn." : ".mlp.") +
                             el::lora::module_peft_name(p.module);
    const bool qk = p.module == Module::Q || p.module == Module::K;
    const int heads = p.module == Module::Q ? s.n_head : s.n_head_kv;
    out.push_back({base + ".lora_A.weight", {p.rank, p.n_in}, type, p.a});
    out.push_back({base + ".lora_B.weight", {p.n_out, p.rank}, type,
                   s.arch == "llama" && qk ? gguf_rows_to_hf(p.b, p.n_out, p.rank, heads) : p.b});
  }
  return out;
}

inline std::vector<uint8_t> serialize_safetensors(const std::vector<SafeTensorSpec>& ts) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::vector<uint8_t> data;
  for (const auto& t : ts) {
    const std::vector<uint8_t> d = encode(t.values, t.type);
    const char* dtype = t.type == TensorType::F32 ? "F32" : t.type == TensorType::F16 ? "F16" : "BF16";
    header += ",\"" + t.name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (size_t k = 0; k < t.shape.size(); ++k) header += (k ? "," : "") + std::to_string(t.shape[k]);
    header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + d.size()) + "]}";
    data.insert(data.end(), d.begin(), d.end());
  }
  header += "}";
  Bytes f;
  f.put<uint64_t>(header.size());
  f.b.insert(f.b.end(), header.begin(), header.end());
  f.b.insert(f.b.end(), data.begin(), data.end());
  return f.b;
}

inline std::string peft_config(int r, float alpha, const std::string& extra = "") {
  return "{\"peft_type\": \"LORA\", \"r\": " + std::to_string(r) + ", \"lora_alpha\": " + std::to_string(alpha) +
         ", \"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", "
         "\"down_proj\"], \"bias\": \"none\", \"modules_to_save\": null" + extra + "}";
}

inline void write_peft(const std::string& dir, const std::string& config, const std::vector<SafeTensorSpec>& ts) {
  mkdir(dir.c_str(), 0755);
  write_file(dir + "/adapter_config.json", std::vector<uint8_t>(config.begin(), config.end()));
  write_file(dir + "/adapter_model.safetensors", serialize_safetensors(ts));
}

}  // namespace lora_fixtures
