// Module names and reading the adaptable shapes from a base model GGUF.
#include "lora_shapes.h"

#include "../error.h"
#include "../gguf.h"

namespace el::lora {

namespace {
struct ModuleNames {
  const char* short_name;
  const char* gguf;
  const char* peft;
};
constexpr ModuleNames kNames[kNumModules] = {
    {"q", "attn_q", "q_proj"},         {"k", "attn_k", "k_proj"},   {"v", "attn_v", "v_proj"},
    {"o", "attn_output", "o_proj"},    {"gate", "ffn_gate", "gate_proj"},
    {"up", "ffn_up", "up_proj"},       {"down", "ffn_down", "down_proj"},
};
}  // namespace

const char* module_short_name(Module m) { return kNames[int(m)].short_name; }
const char* module_gguf_name(Module m) { return kNames[int(m)].gguf; }
const char* module_peft_name(Module m) { return kNames[int(m)].peft; }
bool module_is_attention(Module m) { return int(m) <= int(Module::O); }

ModelShapes shapes_from_gguf(const GGUFFile& model) {
  ModelShapes s;
  s.arch = model.get_string("general.architecture");
  s.n_layer = int(model.get_int(s.arch + ".block_count"));
  if (s.n_layer <= 0) fail(ErrorKind::BadFile, model.path() + ": " + s.arch + ".block_count is not positive");
  // Head counts only matter for PEFT adapters on llama models (their q/k rows are permuted);
  // a per-layer array or an absent key leaves them 0, which that path refuses by name.
  const auto head_count = [&](const std::string& key) -> int {
    const GGUFValue* v = model.find(key);
    if (!v || !v->is_integer()) return 0;
    const auto n = model.get_int_opt(key);
    return n && *n > 0 && *n < (1 << 20) ? int(*n) : 0;
  };
  s.n_head = head_count(s.arch + ".attention.head_count");
  s.n_head_kv = head_count(s.arch + ".attention.head_count_kv");
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
  // phi3: attn_qkv instead of attn_q/k/v, and ffn_up twice as tall with no ffn_gate.
  s.fused_qkv = model.tensor("blk.0.attn_qkv.weight") != nullptr;
  s.fused_gate_up = model.tensor("blk.0.ffn_gate.weight") == nullptr && s.arch == "phi3";
  for (int mi = 0; mi < kNumModules; ++mi) {
    const Module m = Module(mi);
    const bool in_qkv = s.fused_qkv && int(m) <= int(Module::V);
    const bool in_gate_up = s.fused_gate_up && (m == Module::Gate || m == Module::Up);
    const char* tensor = in_qkv ? kFusedQkvGguf : in_gate_up ? "ffn_up" : kNames[mi].gguf;
    for (int l = 0; l < s.n_layer; ++l) {
      const std::string name = "blk." + std::to_string(l) + "." + tensor + ".weight";
      const GGUFTensor* t = model.tensor(name);
      if (!t) fail(ErrorKind::BadFile, model.path() + ": missing tensor '" + name + "'");
      int64_t n_out = t->ne[1];
      if (in_gate_up) n_out /= 2;
      if (in_qkv) {  // q: the attention output's input width; k and v share the rest
        const GGUFTensor* o = model.tensor("blk." + std::to_string(l) + ".attn_output.weight");
        if (!o || o->ne[0] >= t->ne[1] || (t->ne[1] - o->ne[0]) % 2 != 0)
          fail(ErrorKind::BadFile, model.path() + ": cannot split '" + name + "' into q, k and v rows");
        n_out = m == Module::Q ? o->ne[0] : (t->ne[1] - o->ne[0]) / 2;
      }
      if (l == 0) {
        s.n_in[mi] = t->ne[0];
        s.n_out[mi] = n_out;
      } else if (t->ne[0] != s.n_in[mi] || n_out != s.n_out[mi]) {
        fail(ErrorKind::Unsupported, model.path() + ": tensor '" + name + "' has shape " + t->shape_str() +
                                         ", unlike layer 0 (LoRA slots need equal shapes in every layer)");
      }
    }
  }
  return s;
}

}  // namespace el::lora
