// What a LoRA adapter may adapt, and the base model shapes it is checked against.
// Module order is the slot layout order; names are llama.cpp's GGUF names, PEFT's
// module names and the short names reported to users.
#pragma once
#include <cstdint>
#include <string>

namespace el {

class GGUFFile;

namespace lora {

enum class Module : int { Q = 0, K, V, O, Gate, Up, Down };
constexpr int kNumModules = 7;

const char* module_short_name(Module m);  // "q", "k", "v", "o", "gate", "up", "down"
const char* module_gguf_name(Module m);   // "attn_q", ..., "ffn_down"
const char* module_peft_name(Module m);   // "q_proj", ..., "down_proj"
bool module_is_attention(Module m);       // q/k/v/o live under self_attn, the rest under mlp

// Shapes of the adaptable projections, the same in every layer of a llama-family model.
// n_in/n_out come from the base weight tensors (ggml ne[0] / ne[1]), so GQA k/v are right.
struct ModelShapes {
  std::string arch;  // general.architecture, e.g. "llama", "qwen2"
  int n_layer = 0;
  int n_head = 0;     // <arch>.attention.head_count (0: unknown)
  int n_head_kv = 0;  // <arch>.attention.head_count_kv (n_head when absent)
  int64_t n_in[kNumModules] = {};
  int64_t n_out[kNumModules] = {};
  // phi3 fuses q/k/v into one attn_qkv (q rows, k rows, v rows) and gate/up into one ffn_up
  // (gate rows, then up rows); n_in/n_out above are still per module (the parts' shapes).
  bool fused_qkv = false;
  bool fused_gate_up = false;
};

// The module names of the fused projections: GGUF "attn_qkv" / PEFT "qkv_proj" (self_attn) holds
// Q, K, V; GGUF "ffn_up" / PEFT "gate_up_proj" (mlp) of a fused model holds Gate, Up.
constexpr const char* kFusedQkvGguf = "attn_qkv";
constexpr const char* kFusedQkvPeft = "qkv_proj";
constexpr const char* kFusedGateUpPeft = "gate_up_proj";

// Reads the shapes from a base model GGUF (blk.0.<module>.weight; every layer is checked
// to match). Throws el::Error naming a missing or inconsistent tensor.
ModelShapes shapes_from_gguf(const GGUFFile& model);

}  // namespace lora
}  // namespace el
