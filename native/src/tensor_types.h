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
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,  // activation-only type paired with Q4_1 and Q5_1
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,  // activation-only type paired with the K-quants
  IQ4_NL = 20,
  BF16 = 30,
};

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK4_NL = 32;
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

// Q4_1: value = d * q + m, q the nibble (low half: elements 0..15, high half: 16..31).
struct block_q4_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 2 * 2 + QK4_1 / 2, "block_q4_1 layout");

// Q5_0: value = d * (q - 16); q's low 4 bits as in Q4_0, bit 4 of element j in bit j of qh.
struct block_q5_0 {
  fp16_t d;
  uint8_t qh[4];
  uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + QK5_0 / 2, "block_q5_0 layout");

// Q5_1: value = d * q + m, q 5 bits stored as in Q5_0.
struct block_q5_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 2 * 2 + 4 + QK5_1 / 2, "block_q5_1 layout");

// Q8_1: activation format for Q4_1 / Q5_1: Q8_0's quants plus s = fp16(d * sum(qs)), which
// carries the weights' offset m through the dot product.
struct block_q8_1 {
  fp16_t d;
  fp16_t s;
  int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 2 * 2 + QK8_1, "block_q8_1 layout");

// IQ4_NL: value = d * kIq4nlValues[q], q the nibble (laid out as Q4_0's).
struct block_iq4_nl {
  fp16_t d;
  uint8_t qs[QK4_NL / 2];
};
static_assert(sizeof(block_iq4_nl) == 2 + QK4_NL / 2, "block_iq4_nl layout");
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q2_K: 16 sub-blocks of 16; scales[j] holds sub-block j's 4-bit scale (low) and min (high);
// value = d * scale * q - dmin * min, q 2 bits. Per 128 elements, 32 bytes of qs hold four
// runs of 32 (bits 0-1, 2-3, 4-5, 6-7).
struct block_q2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  fp16_t d;
  fp16_t dmin;
};
static_assert(sizeof(block_q2_K) == 2 * 2 + QK_K / 16 + QK_K / 4, "block_q2_K layout");

// Q3_K: 16 sub-blocks of 16 with 6-bit scales (packed in 12 bytes, stored + 32); value =
// d * (scale - 32) * (q - 4 * !h), q 2 bits laid out as Q2_K's, h the element's bit in hmask
// (element 32k + l: bit k of hmask[l]).
struct block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  fp16_t d;
};
static_assert(sizeof(block_q3_K) == 2 + QK_K / 4 + QK_K / 8 + 12, "block_q3_K layout");

// Q4_K: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes.
struct block_q4_K {
  fp16_t d;                       // super-block scale for the scales
  fp16_t dmin;                    // super-block scale for the mins
  uint8_t scales[K_SCALE_SIZE];   // 6-bit scales and mins
  uint8_t qs[QK_K / 2];           // 4-bit quants
};
static_assert(sizeof(block_q4_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2, "block_q4_K layout");

// Q5_K: Q4_K plus a fifth bit per element (element 32k + l: bit k of qh[l]).
struct block_q5_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2 + QK_K / 8, "block_q5_K layout");

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
