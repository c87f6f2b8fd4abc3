// Type traits table and the scalar half / bfloat16 conversions.
#include "tensor_types.h"

#include <cstdlib>

namespace el {

namespace {

constexpr TypeTraits kF32{"f32", 1, sizeof(float), false, TensorType::F32};
constexpr TypeTraits kF16{"f16", 1, sizeof(fp16_t), false, TensorType::F16};
constexpr TypeTraits kBF16{"bf16", 1, sizeof(bf16_t), false, TensorType::BF16};
constexpr TypeTraits kQ8_0{"q8_0", QK8_0, sizeof(block_q8_0), true, TensorType::Q8_0};
constexpr TypeTraits kQ4_0{"q4_0", QK4_0, sizeof(block_q4_0), true, TensorType::Q8_0};
constexpr TypeTraits kQ4_1{"q4_1", QK4_1, sizeof(block_q4_1), true, TensorType::Q8_1};
constexpr TypeTraits kQ5_0{"q5_0", QK5_0, sizeof(block_q5_0), true, TensorType::Q8_0};
constexpr TypeTraits kQ5_1{"q5_1", QK5_1, sizeof(block_q5_1), true, TensorType::Q8_1};
constexpr TypeTraits kIQ4_NL{"iq4_nl", QK4_NL, sizeof(block_iq4_nl), true, TensorType::Q8_0};
constexpr TypeTraits kQ2_K{"q2_K", QK_K, sizeof(block_q2_K), true, TensorType::Q8_K};
constexpr TypeTraits kQ3_K{"q3_K", QK_K, sizeof(block_q3_K), true, TensorType::Q8_K};
constexpr TypeTraits kQ4_K{"q4_K", QK_K, sizeof(block_q4_K), true, TensorType::Q8_K};
constexpr TypeTraits kQ5_K{"q5_K", QK_K, sizeof(block_q5_K), true, TensorType::Q8_K};
constexpr TypeTraits kQ6_K{"q6_K", QK_K, sizeof(block_q6_K), true, TensorType::Q8_K};
// Q8_1 and Q8_K pair with nothing: they are only ever the activation side of a dot product.
constexpr TypeTraits kQ8_1{"q8_1", QK8_1, sizeof(block_q8_1), true, TensorType::Q8_1};
constexpr TypeTraits kQ8_K{"q8_K", QK_K, sizeof(block_q8_K), true, TensorType::Q8_K};

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

const TypeTraits* type_traits(uint32_t type_id) {
  switch (static_cast<TensorType>(type_id)) {
    case TensorType::F32: return &kF32;
    case TensorType::F16: return &kF16;
    case TensorType::BF16: return &kBF16;
    case TensorType::Q8_0: return &kQ8_0;
    case TensorType::Q4_0: return &kQ4_0;
    case TensorType::Q4_1: return &kQ4_1;
    case TensorType::Q5_0: return &kQ5_0;
    case TensorType::Q5_1: return &kQ5_1;
    case TensorType::Q8_1: return &kQ8_1;
    case TensorType::IQ4_NL: return &kIQ4_NL;
    case TensorType::Q2_K: return &kQ2_K;
    case TensorType::Q3_K: return &kQ3_K;
    case TensorType::Q4_K: return &kQ4_K;
    case TensorType::Q5_K: return &kQ5_K;
    case TensorType::Q6_K: return &kQ6_K;
    case TensorType::Q8_K: return &kQ8_K;
  }
  return nullptr;
}

const TypeTraits& type_traits(TensorType t) {
  const TypeTraits* tr = type_traits(static_cast<uint32_t>(t));
  if (!tr) std::abort();  // only reachable with an enum value cast from an unchecked id
  return *tr;
}

size_t row_size(TensorType t, int64_t n) {
  const TypeTraits& tr = type_traits(t);
  return size_t(n / tr.block_size) * tr.type_size;
}

// Branch-free: shift the half's exponent and mantissa into float position and rescale
// by 2^-112 (this also carries inf/nan to inf/nan); subnormals are rebuilt by subtracting
// a magic 0.5 from a float whose low mantissa bits hold them.
float fp16_to_fp32(fp16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = bits_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bits_float((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t mag = two_w < (1u << 27) ? float_bits(denormalized) : float_bits(normalized);
  return bits_float(sign | mag);
}

fp16_t fp32_to_fp16(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {
    // inf stays inf; nan keeps its top payload bits and is forced quiet
    return fp16_t(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
  }
  if (ax >= 0x477ff000u) return fp16_t(sign | 0x7c00);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {
    // below the smallest normal half: adding 0.5 puts the half's subnormal ulp (2^-24)
    // at the float's rounding position, so the FPU does round-to-nearest-even for us
    const float v = bits_float(ax) + 0.5f;
    return fp16_t(sign | (float_bits(v) - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1;
  ax += (uint32_t(15 - 127) << 23) + 0xfff + odd;  // rebias, round to nearest even
  return fp16_t(sign | (ax >> 13));
}

bf16_t fp32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t((u >> 16) | 0x40);  // quiet nan
  return bf16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

}  // namespace el
