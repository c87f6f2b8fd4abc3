// llama.cpp LoRA adapter GGUF: general.type = "adapter", adapter.type = "lora",
// adapter.lora.alpha, tensors blk.N.<module>.weight.lora_a (ne=[n_in, r]) and
// .lora_b (ne=[r, n_out]). Norm-vector tensors are skipped, as llama.cpp does.
#include <cstdlib>
#include <map>
#include <utility>

#include "../error.h"
#include "../gguf.h"
#include "lora_source.h"

namespace el::lora {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "blk.<layer>.<gguf module name>.weight" -> (layer, module, fused); false when it is not one.
// On a fused model (phi3), attn_qkv is the fused q/k/v (module Q) and ffn_up the fused gate/up.
bool parse_weight_name(const std::string& base, const ModelShapes& model, int& layer, Module& module, bool& fused) {
  if (base.rfind("blk.", 0) != 0 || !ends_with(base, ".weight")) return false;
  const size_t dot = base.find('.', 4);
  if (dot == std::string::npos || dot == 4) return false;
  char* end = nullptr;
  const long l = std::strtol(base.c_str() + 4, &end, 10);
  if (end != base.c_str() + dot || l < 0 || l > 1000000) return false;
  const std::string mod = base.substr(dot + 1, base.size() - dot - 1 - 7);
  layer = int(l);
  fused = false;
  if (mod == kFusedQkvGguf) {
    module = Module::Q;
    fused = true;
    return true;
  }
  for (int mi = 0; mi < kNumModules; ++mi) {
    if (mod == module_gguf_name(Module(mi))) {
      module = Module(mi);
      fused = model.fused_gate_up && module == Module::Up;
      return true;
    }
  }
  return false;
}

TensorRef ref_of(const std::string& path, const GGUFTensor& t) {
  if (t.ne[2] != 1 || t.ne[3] != 1)
    fail(ErrorKind::BadFile, path + ": LoRA tensor '" + t.name + "' has shape " + t.shape_str() + ", expected 2-D");
  TensorRef r;
  r.name = t.name;
  r.type = t.type;
  r.data = t.data;
  r.ne0 = t.ne[0];
  r.ne1 = t.ne[1];
  return r;
}

}  // namespace

LoraSource open_gguf_adapter(const std::string& path, const ModelShapes& model) {
  std::shared_ptr<GGUFFile> f = GGUFFile::open(path);
  const std::string type = f->get_string_opt("general.type").value_or("");
  if (type != "adapter")
    fail(ErrorKind::BadFile, path + ": not a LoRA adapter (general.type is '" + type + "', expected 'adapter')");
  const std::string adapter_type = f->get_string_opt("adapter.type").value_or("");
  if (adapter_type != "lora")
    fail(ErrorKind::Unsupported, path + ": adapter.type is '" + adapter_type + "', only 'lora' is supported");
  const std::string arch = f->get_string_opt("general.architecture").value_or("");
  if (arch != model.arch)
    fail(ErrorKind::InvalidArgument,
         path + ": adapter architecture '" + arch + "' does not match the model's '" + model.arch + "'");
  if (f->has("adapter.alora.invocation_tokens"))
    fail(ErrorKind::Unsupported, path + ": activated LoRA (adapter.alora.invocation_tokens) is not supported");

  LoraSource src;
  src.path = path;
  src.format = "gguf";
  src.alpha = float(f->get_float_opt("adapter.lora.alpha").value_or(0.0));

  std::map<std::pair<int, int>, LoraPair> by_target;
  for (const GGUFTensor& t : f->tensors()) {
    const bool is_a = ends_with(t.name, ".lora_a");
    if (!is_a && !ends_with(t.name, ".lora_b")) {
      if (ends_with(t.name, "_norm.weight")) continue;
      fail(ErrorKind::BadFile, path + ": tensor '" + t.name + "' is not a LoRA tensor (.lora_a / .lora_b)");
    }
    const std::string base = t.name.substr(0, t.name.size() - 7);
    if (base.rfind("token_embd", 0) == 0)
      fail(ErrorKind::Unsupported, path + ": embedding LoRA ('" + t.name + "') is not supported");
    if (base.rfind("output.", 0) == 0)
      fail(ErrorKind::Unsupported, path + ": LoRA on the output projection ('" + t.name + "') is not supported");
    int layer = 0;
    Module m = Module::Q;
    bool fused = false;
    if (!parse_weight_name(base, model, layer, m, fused))
      fail(ErrorKind::Unsupported, path + ": tensor '" + t.name +
                                       "' adapts a weight this engine does not (only attn_q/k/v/qkv/output, ffn_gate/up/down)");
    LoraPair& pr = by_target[{layer, int(m) + (fused ? kNumModules : 0)}];
    pr.layer = layer;
    pr.module = m;
    pr.fused = fused;
    (is_a ? pr.a : pr.b) = ref_of(path, t);
  }
  for (auto& [key, pr] : by_target) {
    if (!pr.a.data || !pr.b.data)
      fail(ErrorKind::BadFile, path + ": '" + (pr.a.data ? pr.a.name : pr.b.name) + "' has no matching " +
                                   (pr.a.data ? "lora_b" : "lora_a") + " tensor");
    src.pairs.push_back(std::move(pr));
  }
  src.keep_alive = std::move(f);
  return src;
}

}  // namespace el::lora
