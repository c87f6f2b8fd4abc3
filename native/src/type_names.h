// ggml's names for every GGUF tensor type id, including the types this engine cannot read, so
// that a refusal names the type a user sees in their file's name or in llama.cpp (q5_K, iq4_xs)
// instead of a number, and lists the types that would load.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace el {

// "q5_K" for 13; nullptr for an id ggml never assigned.
const char* ggml_type_name(uint32_t id);

// The weight types a model may hold here: those with a tensor type entry and a dot product on
// the scalar path (every path has the same set), e.g. "f32, f16, bf16, q8_0, q4_0, q4_K, q6_K".
std::string supported_weight_types();

// "type q5_K (id 13)" or "type id 99 (unknown)".
std::string describe_type_id(uint32_t id);

// The refusal of a file whose tensors (name, type id) have types this engine cannot read: every
// such type once, with its first tensor and how many more, then the supported list, e.g.
// "tensor 'blk.0.ffn_down.weight' and 23 more have type q5_K (id 13); tensor 'x' has type ...,
// which this engine cannot read (supported: f32, ...)".
std::string unreadable_types_message(const std::vector<std::pair<std::string, uint32_t>>& tensors);

}  // namespace el
