// PEFT LoRA directory: adapter_config.json + adapter_model.safetensors, tensors named
//   base_model.model.model.layers.N.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
//   base_model.model.model.layers.N.mlp.{gate,up,down}_proj.lora_{A,B}.weight
// (the same for Llama and Qwen2). lora_A is [r, n_in], lora_B is [n_out, r] (torch order).
// fan_in_fan_out needs no transposition here: PEFT keeps lora_A/lora_B as nn.Linear weights
// either way and only transposes the merged delta for Conv1D bases (and resets the flag to
// false for nn.Linear bases, which llama-family models have).
// For a llama base model, lora_B of q_proj / k_proj is in Hugging Face row order and is copied
// into GGUF order here (peft_rope_order.h), as convert_lora_to_gguf.py does.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <utility>

#include "../error.h"
#include "json.h"
#include "lora_source.h"
#include "mapped_file.h"
#include "peft_rope_order.h"
#include "safetensors.h"

namespace el::lora {

namespace {

using json::Value;

// Far above any trained adapter's rank (the slot pool refuses ranks above its own maximum anyway).
constexpr int kMaxPeftRank = 1 << 16;

bool file_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

struct Config {
  int r = 0;
  double alpha = 0;
  bool rslora = false;
  const Value* target_modules = nullptr;  // string or array of strings (nullptr: any)
};

Config read_config(const Value& c, const std::string& path) {
  if (c.kind != Value::Kind::Object) fail(ErrorKind::BadFile, path + ": not a JSON object");
  auto get = [&](const char* key) { return c.find(key); };
  auto truthy = [&](const char* key) {
    const Value* v = get(key);
    return v && v->kind == Value::Kind::Bool && v->boolean;
  };
  auto number = [&](const char* key) {
    const Value* v = get(key);
    if (!v || v->kind != Value::Kind::Number) fail(ErrorKind::BadFile, path + ": '" + key + "' must be a number");
    return v->number;
  };
  if (const Value* t = get("peft_type"); t && !(t->kind == Value::Kind::String && t->string == "LORA"))
    fail(ErrorKind::Unsupported, path + ": peft_type is not \"LORA\"");
  Config cfg;
  const double r = number("r");
  // Checked in double before the cast: a value outside int's range would make the cast undefined.
  if (!(r >= 1 && r <= double(kMaxPeftRank)) || r != std::floor(r))
    fail(ErrorKind::BadFile, path + ": 'r' must be a positive integer (at most " + std::to_string(kMaxPeftRank) + ")");
  cfg.r = int(r);
  cfg.alpha = number("lora_alpha");
  if (!(cfg.alpha > 0)) fail(ErrorKind::BadFile, path + ": 'lora_alpha' must be positive");
  cfg.rslora = truthy("use_rslora");
  if (truthy("use_dora")) fail(ErrorKind::Unsupported, path + ": DoRA (use_dora) is not supported");
  if (truthy("lora_bias")) fail(ErrorKind::Unsupported, path + ": lora_bias is not supported");
  if (const Value* b = get("bias"); b && !(b->kind == Value::Kind::String && b->string == "none"))
    fail(ErrorKind::Unsupported, path + ": bias training ('bias' other than \"none\") is not supported");
  if (const Value* m = get("modules_to_save"); m && !m->is_null() && !(m->kind == Value::Kind::Array && m->array.empty()))
    fail(ErrorKind::Unsupported,
         path + ": modules_to_save (fully trained copies of base modules) is not supported; only LoRA weights are");
  // Per-module rank/alpha overrides are fine only when they change nothing.
  auto check_pattern = [&](const char* key, double expected) {
    const Value* p = get(key);
    if (!p || p->is_null()) return;
    if (p->kind != Value::Kind::Object) fail(ErrorKind::BadFile, path + ": '" + key + "' must be an object");
    for (const auto& [mod, v] : p->object)
      if (v.kind != Value::Kind::Number || v.number != expected)
        fail(ErrorKind::Unsupported, path + ": " + key + " gives '" + mod + "' its own value (per-module rank/alpha is not supported)");
  };
  check_pattern("rank_pattern", cfg.r);
  check_pattern("alpha_pattern", cfg.alpha);
  if (const Value* t = get("target_modules"); t && !t->is_null()) {
    const bool ok = t->kind == Value::Kind::String ||
                    (t->kind == Value::Kind::Array &&
                     [&] {
                       for (const Value& e : t->array)
                         if (e.kind != Value::Kind::String) return false;
                       return true;
                     }());
    if (!ok) fail(ErrorKind::BadFile, path + ": 'target_modules' must be a string or a list of strings");
    cfg.target_modules = t;
  }
  return cfg;
}

// PEFT's rule: a list entry matches a module key equal to it or ending in "." + it. A string is
// a regular expression in PEFT (Python's re.fullmatch); it is not evaluated here: a hostile
// pattern can backtrack without bound ('(.*.*.*.*)*x' ran past 60 s in std::regex on one key), and the
// tensors in the file say what is adapted, as convert_lora_to_gguf.py (which ignores
// target_modules altogether) takes it.
bool targeted(const Value* targets, const std::string& key) {
  if (!targets || targets->kind == Value::Kind::String) return true;
  for (const Value& t : targets->array) {
    const std::string& s = t.string;
    if (key == s || (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0 &&
                     key[key.size() - s.size() - 1] == '.'))
      return true;
  }
  return false;
}

// "model.layers.<N>.<self_attn|mlp>.<proj>" -> (layer, module). By hand, not std::regex, whose
// recursion grows with the input: a tensor name is as long as the file says.
bool parse_module_key(const std::string& key, int& layer, Module& module, bool& fused) {
  static const std::string prefix = "model.layers.";
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  size_t p = prefix.size(), digits = 0;
  int n = 0;
  while (p < key.size() && key[p] >= '0' && key[p] <= '9' && digits < 6) n = n * 10 + (key[p++] - '0'), ++digits;
  if (digits == 0 || p >= key.size() || key[p++] != '.') return false;
  const size_t dot = key.find('.', p);
  if (dot == std::string::npos) return false;
  const std::string block = key.substr(p, dot - p), proj = key.substr(dot + 1);
  if (block != "self_attn" && block != "mlp") return false;
  layer = n;
  fused = true;  // phi3's fused projections (split by split_fused_pairs)
  if (block == "self_attn" && proj == kFusedQkvPeft) return module = Module::Q, true;
  if (block == "mlp" && proj == kFusedGateUpPeft) return module = Module::Up, true;
  fused = false;
  for (int mi = 0; mi < kNumModules; ++mi) {
    if (proj == module_peft_name(Module(mi)) && (block == "self_attn") == module_is_attention(Module(mi))) {
      module = Module(mi);
      return true;
    }
  }
  return false;
}

void refuse_special(const std::string& file, const std::string& name) {
  if (name.find("lora_embedding_") != std::string::npos || name.find("embed_tokens") != std::string::npos)
    fail(ErrorKind::Unsupported, file + ": embedding LoRA ('" + name + "') is not supported");
  if (name.find("lm_head") != std::string::npos)
    fail(ErrorKind::Unsupported, file + ": LoRA on the output projection ('" + name + "') is not supported");
  if (name.find("lora_magnitude_vector") != std::string::npos)
    fail(ErrorKind::Unsupported, file + ": DoRA ('" + name + "') is not supported");
}

TensorRef ref_of(const std::string& file, const SafeTensor& t) {
  if (t.shape.size() != 2)
    fail(ErrorKind::BadFile, file + ": tensor '" + t.name + "' has " + std::to_string(t.shape.size()) + " dimensions, expected 2");
  TensorRef r;
  r.name = t.name;
  r.type = t.type;
  r.data = t.data;
  r.ne0 = t.shape[1];  // torch [rows, cols] -> ggml-style [row length, rows]
  r.ne1 = t.shape[0];
  return r;
}

// What the source's TensorRefs point into: the safetensors mapping, and the permuted copies of
// q/k lora_B for llama models.
struct PeftData {
  std::shared_ptr<SafetensorsFile> file;
  std::vector<std::vector<uint8_t>> permuted;
};

// Points pr.b at a copy of its rows in GGUF RoPE order (q: n_head heads, k: n_head_kv).
void permute_b_rows(LoraPair& pr, const ModelShapes& model, const std::string& file, PeftData& data) {
  const bool is_q = pr.module == Module::Q;
  const int heads = is_q ? model.n_head : model.n_head_kv;
  const std::string what = std::string(module_peft_name(pr.module)) + " lora_B '" + pr.b.name + "'";
  if (heads <= 0)
    fail(ErrorKind::Unsupported, file + ": " + what + " needs the model's head count to reorder its rows for llama RoPE, "
                                        "and the model gives no " + model.arch + ".attention.head_count");
  if (pr.b.ne1 % (2 * int64_t(heads)) != 0)
    fail(ErrorKind::InvalidArgument, file + ": " + what + " has " + std::to_string(pr.b.ne1) + " rows, not a multiple of 2 x " +
                                         std::to_string(heads) + (is_q ? " heads" : " KV heads") + " (adapter for another base model?)");
  const size_t row = row_size(pr.b.type, pr.b.ne0);
  std::vector<uint8_t>& copy = data.permuted.emplace_back(row * size_t(pr.b.ne1));
  permute_hf_rows_to_gguf(pr.b.data, copy.data(), pr.b.ne1, row, heads);
  pr.b.data = copy.data();
}

}  // namespace

LoraSource open_peft_adapter(const std::string& dir, const ModelShapes& model) {
  const std::string config_path = dir + "/adapter_config.json";
  const std::string weights_path = dir + "/adapter_model.safetensors";
  if (!file_exists(config_path)) fail(ErrorKind::BadFile, dir + ": not a PEFT adapter directory (no adapter_config.json)");
  if (!file_exists(weights_path)) {
    if (file_exists(dir + "/adapter_model.bin"))
      fail(ErrorKind::Unsupported, dir + ": adapter_model.bin (pickle) is not supported; save it as safetensors");
    fail(ErrorKind::BadFile, dir + ": no adapter_model.safetensors");
  }
  Config cfg;
  Value config_json;
  {
    auto cf = MappedFile::open(config_path);
    config_json = json::parse(reinterpret_cast<const char*>(cf->data()), cf->size(), config_path);
    cfg = read_config(config_json, config_path);
  }
  auto data = std::make_shared<PeftData>();
  data->file = SafetensorsFile::open(weights_path);
  const SafetensorsFile* st = data->file.get();

  LoraSource src;
  src.path = dir;
  src.format = "peft";
  src.alpha = float(cfg.alpha);
  src.rslora = cfg.rslora;
  std::map<std::pair<int, int>, LoraPair> by_target;
  for (const SafeTensor& t : st->tensors()) {
    refuse_special(weights_path, t.name);
    std::string key = starts_with(t.name, "base_model.model.") ? t.name.substr(17) : t.name;
    bool is_a = false;
    const std::string sa = ".lora_A.weight", sb = ".lora_B.weight";
    if (key.size() > sa.size() && key.compare(key.size() - sa.size(), sa.size(), sa) == 0) is_a = true;
    else if (!(key.size() > sb.size() && key.compare(key.size() - sb.size(), sb.size(), sb) == 0))
      fail(ErrorKind::Unsupported, weights_path + ": tensor '" + t.name + "' is not a LoRA A/B weight");
    key.resize(key.size() - sa.size());
    int layer = 0;
    Module m = Module::Q;
    bool fused = false;
    if (!parse_module_key(key, layer, m, fused))
      fail(ErrorKind::Unsupported, weights_path + ": tensor '" + t.name +
                                       "' adapts a module this engine does not (only self_attn q/k/v/o/qkv_proj, mlp gate/up/down/gate_up_proj)");
    if (!targeted(cfg.target_modules, key))
      fail(ErrorKind::BadFile, weights_path + ": tensor '" + t.name + "' is for a module not in target_modules");
    LoraPair& pr = by_target[{layer, int(m) + (fused ? kNumModules : 0)}];
    pr.layer = layer;
    pr.module = m;
    pr.fused = fused;
    (is_a ? pr.a : pr.b) = ref_of(weights_path, t);
  }
  for (auto& [k, pr] : by_target) {
    if (!pr.a.data || !pr.b.data)
      fail(ErrorKind::BadFile, weights_path + ": '" + (pr.a.data ? pr.a.name : pr.b.name) + "' has no matching " +
                                   (pr.a.data ? "lora_B" : "lora_A") + " tensor");
    if (pr.a.ne1 != cfg.r)
      fail(ErrorKind::BadFile, weights_path + ": tensor '" + pr.a.name + "' has rank " + std::to_string(pr.a.ne1) +
                                   " but adapter_config.json says r = " + std::to_string(cfg.r));
    if (peft_permutes_qk(model.arch) && !pr.fused && (pr.module == Module::Q || pr.module == Module::K))
      permute_b_rows(pr, model, weights_path, *data);
    src.pairs.push_back(std::move(pr));
  }
  src.keep_alive = std::move(data);
  return src;
}

}  // namespace el::lora
