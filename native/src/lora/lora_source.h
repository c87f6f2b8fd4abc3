// An adapter file opened and validated against the base model, before it is copied into
// a slot. Both formats (llama.cpp LoRA GGUF, PEFT directory) produce this one form: for
// every adapted (layer, module) an A and a B tensor still in the file's memory map.
//   A: r rows of n_in elements   (GGUF lora_a ne=[n_in, r]; PEFT lora_A shape [r, n_in])
//   B: n_out rows of r elements  (GGUF lora_b ne=[r, n_out]; PEFT lora_B shape [n_out, r])
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../tensor_types.h"
#include "lora_shapes.h"

namespace el::lora {

struct TensorRef {
  std::string name;             // as in the file, for messages
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;  // inside the source's mapping
  int64_t ne0 = 0;              // row length
  int64_t ne1 = 0;              // number of rows
};

struct LoraPair {
  int layer = 0;
  Module module = Module::Q;
  // A fused projection's pair (phi3: module Q for attn_qkv, Up for ffn_up / gate_up_proj):
  // validate_source splits it into its modules' pairs (one A, B's rows in parts).
  bool fused = false;
  TensorRef a, b;
};

struct LoraSource {
  std::string path;
  std::string format;  // "gguf" | "peft"
  float alpha = 0;     // as stored; 0 in a GGUF means "no alpha/r factor" (llama.cpp's rule)
  bool rslora = false; // factor alpha/sqrt(r) instead of alpha/r
  int rank = 0;        // the same for every pair (checked)
  std::vector<LoraPair> pairs;
  std::shared_ptr<const void> keep_alive;  // owns the mapping the TensorRefs point into

  // The factor the slot multiplies B(Ax) by, before the per-token scale.
  float factor() const;
};

// Opens `path`: a directory is read as PEFT (adapter_config.json + adapter_model.safetensors),
// a file as llama.cpp LoRA GGUF. Validates everything against `model` and `max_rank`;
// throws el::Error naming the file and the problem.
LoraSource open_adapter(const std::string& path, const ModelShapes& model, int max_rank);

LoraSource open_gguf_adapter(const std::string& path, const ModelShapes& model);
LoraSource open_peft_adapter(const std::string& dir, const ModelShapes& model);

// Replaces each fused pair by its modules' pairs: the same A, and B's rows split as the model's
// fused weight splits (q, k, v / gate, up). Throws when B's rows are not the parts' sum.
void split_fused_pairs(LoraSource& src, const ModelShapes& model);

// Shape checks shared by both formats (after split_fused_pairs): pairs complete and unique, layer in range, A/B
// shapes match the model, one rank for all pairs, rank <= max_rank. Sets src.rank.
void validate_source(LoraSource& src, const ModelShapes& model, int max_rank);

}  // namespace el::lora
