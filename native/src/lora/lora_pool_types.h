// The LoRA pool's storage types, one traits row each (as ggml's type traits): its name, how
// big its regions are, how a source row is written into them and read back, and the kernels
// that compute with them. The pool, the apply step and the engine look a type up here instead
// of testing which type it is. The C API (edgelora.h: el_lora_pool_type) and the TypeScript
// API (src/engine/types.ts: LoraPoolType) list the same types by the same numbers and names.
#pragma once
#include <cstdint>

#include "../kernels/kernels.h"
#include "../tensor_types.h"

namespace el::lora {

enum class LoraPoolType { F16 = 0, Q8 = 1, Q4 = 2 };
constexpr int kNumLoraPoolTypes = 3;

struct LoraPoolTraits {
  LoraPoolType type;
  const char* name;  // "f16" | "q8" | "q4": configuration, messages, adapter images
  // Integer kernels: the activations are quantized to Q8_0 blocks before the shrink, and each
  // token's t to int8 (kernels/lora_q8.h) before the expand.
  bool integer;
  int max_padded_rank;  // the largest padded rank the kernels keep exact
  // Bytes of a module's A over n_in inputs and of its B over outputs 0 .. n_out - 1 (whole
  // 8-output chunks) at padded rank R (lora_pool.h: a_region_bytes / b_region_bytes).
  int64_t (*a_bytes)(int64_t n_in, int R);
  int64_t (*b_bytes)(int64_t n_out, int R);
  // Writes A's rank j (n_in floats) / B's output o (r floats, one per rank) into zeroed regions.
  void (*put_a_row)(uint8_t* a, int64_t n_in, int R, int j, const float* row);
  void (*put_b_row)(uint8_t* b, int R, int64_t o, const float* row, int r);
  // Element (j, i) of A and (o, j) of B as stored (tests, tools).
  float (*a_value)(const uint8_t* a, int R, int j, int64_t i);
  float (*b_value)(const uint8_t* b, int R, int64_t o, int j);
  // The path's kernels for this type (kernels.h: lora_shrink_* / lora_expand_*), with one
  // signature for every type: a float type reads x and t, an integer one xq and tq / td.
  void (*shrink)(const kernels::KernelSet& ks, int n_in, int R, const uint8_t* a, int n_tok, const float* const* x,
                 const block_q8_0* const* xq, const float* coeff, float* const* t);
  void (*expand)(const kernels::KernelSet& ks, int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok,
                 const float* const* t, const int8_t* const* tq, const float* td, float* const* y);
  // Optional (nullptr: through put_a_row / put_b_row): the same from F16 source values (2 bytes
  // each, unaligned), stored as they are. For the F16 type, a conversion through float and back
  // is the identity on every finite half, and it was most of an adapter load's CPU time.
  void (*put_a_row_f16)(uint8_t* a, int64_t n_in, int R, int j, const uint8_t* row);
  void (*put_b_row_f16)(uint8_t* b, int R, int64_t o, const uint8_t* row, int r);
};

const LoraPoolTraits& pool_traits(LoraPoolType t);
// The row of a type by its number (the C API's el_lora_pool_type, an adapter image's header),
// or nullptr for a number that is no type.
const LoraPoolTraits* find_pool_type(uint32_t id);

inline const char* pool_type_name(LoraPoolType t) { return pool_traits(t).name; }
inline bool is_integer_pool(LoraPoolType t) { return pool_traits(t).integer; }

}  // namespace el::lora
