// Writing and reading the 8-bit and 4-bit LoRA pool layouts (kernels.h: lora_shrink_q8 /
// lora_expand_q8, lora_shrink_q4 / lora_expand_q4).
// The pool converts an adapter one source row at a time, so both writers take one row of A
// (a rank over all inputs) or of B (an output over the ranks). The region must be zeroed first:
// zero bytes are zero scales and zero quants, which is what padding ranks, inputs past n_in and
// outputs past n_out must hold.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace el::kernels {

// Where the layouts (kernels.h) keep a quant, for Bits 8 or 4: the byte of A element (j, i) in
// its block (i < 32) and of B element (o, j) in its chunk (o < 8), the shift of its nibble, and
// the signed value it stands for. The one definition the writers, readers and the scalar
// reference kernels share.
template <int Bits>
constexpr int64_t lora_a_quant_byte(int R, int j, int i) {
  return 2 * int64_t(R) + (i / 4) / (8 / Bits) * int64_t(R) * 4 + j * 4 + i % 4;
}
template <int Bits>
constexpr int64_t lora_b_quant_byte(int o, int j) {
  return 2 * kLoraOutChunk + (j / 4) / (8 / Bits) * kLoraOutChunk * 4 + o * 4 + j % 4;
}
template <int Bits>
constexpr int lora_quant_shift(int g) {  // g: the element's 4-byte group (i / 4 or j / 4)
  return Bits == 8 ? 0 : g % 2 * 4;
}
template <int Bits>
inline int lora_quant_value(uint8_t byte, int g) {
  return Bits == 8 ? int(int8_t(byte)) : ((byte >> lora_quant_shift<Bits>(g)) & 15) - 8;
}

// Quantizes A's rank j (n_in floats) into an A region of padded rank R.
void lora_q8_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row);
// Quantizes B's output o (r <= R floats, one per rank; ranks r..R-1 stay zero) into a B region.
void lora_q8_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r);

// Quantizes one token's shrink output t (R floats) for the 8-bit expand, once per projection:
// returns td with t[j] ~ td * q[j] (d = amax / 127, q rounded half to even).
float lora_q8_quantize_t(const float* t, int R, int8_t* q);

// The stored (dequantized) values, for tests and tools.
float lora_q8_a_value(const uint8_t* a, int R, int j, int64_t i);
float lora_q8_b_value(const uint8_t* b, int R, int64_t o, int j);

// The 4-bit layouts: the same calls. Their t is quantized by lora_q8_quantize_t too.
void lora_q4_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row);
void lora_q4_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r);
float lora_q4_a_value(const uint8_t* a, int R, int j, int64_t i);
float lora_q4_b_value(const uint8_t* b, int R, int64_t o, int j);
// The pool types' traits rows (lora/lora_pool_types.h) gather these calls per layout.

}  // namespace el::kernels
