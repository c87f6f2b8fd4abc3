// The LoRA pool types' traits rows (lora_pool_types.h). The F16 layout is defined here; the
// 8-bit and 4-bit ones in kernels/lora_q8.h.
#include "lora_pool_types.h"

#include <climits>
#include <cstring>

#include "../kernels/lora_q8.h"
#include "../round_up.h"

namespace el::lora {
namespace {

constexpr int kC = kernels::kLoraOutChunk;

// F16: A transposed (n_in rows of R ranks); B in chunks of 8 outputs, each R ranks x 8 outputs.
int64_t f16_a_bytes(int64_t n_in, int R) { return n_in * R * int64_t(sizeof(fp16_t)); }
int64_t f16_b_bytes(int64_t n_out, int R) { return round_up<int64_t>(n_out, kC) * R * int64_t(sizeof(fp16_t)); }
fp16_t* f16(uint8_t* p) { return reinterpret_cast<fp16_t*>(p); }
const fp16_t* f16(const uint8_t* p) { return reinterpret_cast<const fp16_t*>(p); }
void f16_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) {
  for (int64_t i = 0; i < n_in; ++i) f16(a)[i * R + j] = fp32_to_fp16(row[i]);
}
void f16_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) {
  fp16_t* chunk = f16(b) + (o / kC) * R * kC + o % kC;
  for (int j = 0; j < r; ++j) chunk[j * kC] = fp32_to_fp16(row[j]);
}
void f16_put_a_row_f16(uint8_t* a, int64_t n_in, int R, int j, const uint8_t* row) {
  fp16_t* d = f16(a) + j;
  for (int64_t i = 0; i < n_in; ++i) std::memcpy(d + i * R, row + 2 * i, 2);
}
void f16_put_b_row_f16(uint8_t* b, int R, int64_t o, const uint8_t* row, int r) {
  fp16_t* chunk = f16(b) + (o / kC) * R * kC + o % kC;
  for (int j = 0; j < r; ++j) std::memcpy(chunk + j * kC, row + 2 * j, 2);
}
float f16_a_value(const uint8_t* a, int R, int j, int64_t i) { return fp16_to_fp32(f16(a)[i * R + j]); }
float f16_b_value(const uint8_t* b, int R, int64_t o, int j) {
  return fp16_to_fp32(f16(b)[(o / kC) * R * kC + j * kC + o % kC]);
}
void f16_shrink(const kernels::KernelSet& ks, int n_in, int R, const uint8_t* a, int n_tok, const float* const* x,
                const block_q8_0* const*, const float* coeff, float* const* t) {
  ks.lora_shrink_f16(n_in, R, f16(a), n_tok, x, coeff, t);
}
void f16_expand(const kernels::KernelSet& ks, int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok,
                const float* const* t, const int8_t* const*, const float*, float* const* y) {
  const fp16_t* bf[kernels::kLoraMaxTokens];
  for (int k = 0; k < n_tok; ++k) bf[k] = f16(b[k]);
  ks.lora_expand_f16(o0, o1, R, bf, n_tok, t, y);
}

// The 8-bit and 4-bit layouts' kernels, through the KernelSet entry of each.
template <decltype(kernels::KernelSet::lora_shrink_q8) kernels::KernelSet::*Shrink>
void int_shrink(const kernels::KernelSet& ks, int n_in, int R, const uint8_t* a, int n_tok, const float* const*,
                const block_q8_0* const* xq, const float* coeff, float* const* t) {
  (ks.*Shrink)(n_in, R, a, n_tok, xq, coeff, t);
}
template <decltype(kernels::KernelSet::lora_expand_q8) kernels::KernelSet::*Expand>
void int_expand(const kernels::KernelSet& ks, int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok,
                const float* const*, const int8_t* const* tq, const float* td, float* const* y) {
  (ks.*Expand)(o0, o1, R, b, n_tok, tq, td, y);
}

using kernels::KernelSet;
const LoraPoolTraits kTraits[kNumLoraPoolTypes] = {
    {LoraPoolType::F16, "f16", false, INT_MAX, f16_a_bytes, f16_b_bytes, f16_put_a_row, f16_put_b_row, f16_a_value,
     f16_b_value, f16_shrink, f16_expand, f16_put_a_row_f16, f16_put_b_row_f16},
    {LoraPoolType::Q8, "q8", true, kernels::kLoraQ8MaxRank, kernels::lora_q8_a_bytes, kernels::lora_q8_b_bytes,
     kernels::lora_q8_put_a_row, kernels::lora_q8_put_b_row, kernels::lora_q8_a_value, kernels::lora_q8_b_value,
     int_shrink<&KernelSet::lora_shrink_q8>, int_expand<&KernelSet::lora_expand_q8>, nullptr, nullptr},
    {LoraPoolType::Q4, "q4", true, kernels::kLoraQ8MaxRank, kernels::lora_q4_a_bytes, kernels::lora_q4_b_bytes,
     kernels::lora_q4_put_a_row, kernels::lora_q4_put_b_row, kernels::lora_q4_a_value, kernels::lora_q4_b_value,
     int_shrink<&KernelSet::lora_shrink_q4>, int_expand<&KernelSet::lora_expand_q4>, nullptr, nullptr},
};

}  // namespace

const LoraPoolTraits& pool_traits(LoraPoolType t) { return kTraits[int(t)]; }

const LoraPoolTraits* find_pool_type(uint32_t id) {
  for (const LoraPoolTraits& row : kTraits)
    if (uint32_t(row.type) == id) return &row;
  return nullptr;
}

}  // namespace el::lora
