// Tensor element types and their block layouts: bit-exact with ggml's GGUF encoding.
// One traits row per type (name, block size, bytes per block, the activation type its
// dot product pairs with). Kernels live in kernels/; this header only describes data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace el {

// Numeric ids are ggml's (they are stored in GGUF files).
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  Q8_K = 15,  // activation-only type paired with the K-quants
  BF16 = 30,
};

constexpr int QK4_0 = 32;
constexpr int QK8_0 = 32;
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;

using fp16_t = uint16_t;
using bf16_t = uint16_t;

struct block_q4_0 {
  fp16_t d;             // scale
  uint8_t qs[QK4_0 / 2];  // nibbles: low half = elements 0..15, high half = 16..31; value = q - 8
};
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "block_q4_0 layout");

struct block_q8_0 {
  fp16_t d;          // scale
  int8_t qs[QK8_0];  // value = d * q
};
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "block_q8_0 layout");

// Q4_K: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes.
struct block_q4_K {
  fp16_t d;                       // super-block scale for the scales
  fp16_t dmin;                    // super-block scale for the mins
  uint8_t scales[K_SCALE_SIZE];   // 6-bit scales and mins
  uint8_t qs[QK_K / 2];           // 4-bit quants
};
static_assert(sizeof(block_q4_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2, "block_q4_K layout");

// Q6_K: 16 sub-blocks of 16, 8-bit scales; value = d * scale * (q - 32).
struct block_q6_K {
  uint8_t ql[QK_K / 2];       // low 4 bits
  uint8_t qh[QK_K / 4];       // high 2 bits
  int8_t scales[QK_K / 16];   // 8-bit scales
  fp16_t d;                   // super-block scale
};
static_assert(sizeof(block_q6_K) == 3 * QK_K / 4 + QK_K / 16 + 2, "block_q6_K layout");

// Q8_K: activation format for K-quant dot products.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];  // sums of groups of 16 quants
};
static_assert(sizeof(block_q8_K) == 4 + QK_K + 2 * QK_K / 16, "block_q8_K layout");

struct TypeTraits {
  const char* name;
  int block_size;        // elements per block
  size_t type_size;      // bytes per block
  bool quantized;
  TensorType vec_dot_type;  // the type activations are converted to before a dot product
};

// nullptr for a type id this engine does not support.
const TypeTraits* type_traits(uint32_t type_id);
const TypeTraits& type_traits(TensorType t);
// Bytes of one row of n elements (n must be a multiple of the block size).
size_t row_size(TensorType t, int64_t n);

// IEEE half <-> float (round to nearest even), bf16 <-> float (round to nearest even).
float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(bf16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bf16_t fp32_to_bf16(float f);

}  // namespace el
