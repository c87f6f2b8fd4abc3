// The 8-bit and 4-bit LoRA layouts (kernels.h), element by element: the readable spec the
// kernels follow.
#include "lora_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace el::kernels {

namespace {

constexpr int QB = kLoraQ8Block;
constexpr int C = kLoraOutChunk;

void put_fp16(uint8_t* p, float v) {
  const fp16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, sizeof h);
}
float get_fp16(const uint8_t* p) {
  fp16_t h;
  std::memcpy(&h, p, sizeof h);
  return fp16_to_fp32(h);
}

// ggml's Q8_0 rule for n values: returns d, writes the quants' bytes.
float quantize8(const float* v, int n, uint8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = uint8_t(int8_t(std::lround(v[i] * id)));
  return d;
}

// ggml's Q4_0 rule for n values: returns d, writes nibbles 0..15 (value nibble - 8).
float quantize4(const float* v, int n, uint8_t* q) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(v[i]) > amax) {
      amax = std::fabs(v[i]);
      max = v[i];
    }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = uint8_t(std::min(15, int(int8_t(v[i] * id + 8.5f))));
  return d;
}

template <int Bits>
float quantize(const float* v, int n, uint8_t* q) {
  return Bits == 8 ? quantize8(v, n, q) : quantize4(v, n, q);
}

// The regions are zeroed before writing, so a 4-bit quant is ORed into its nibble. Quants left
// at zero bytes: inputs past n_in (an 8-bit 0, a 4-bit -8 d, both times a zero activation) and
// ranks past the data (zero scales in A, so t is zero there).
template <int Bits>
void put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) {
  for (int64_t i0 = 0; i0 < n_in; i0 += QB) {
    const int n = int(std::min<int64_t>(QB, n_in - i0));
    uint8_t q[QB];
    uint8_t* blk = a + (i0 / QB) * lora_a_block_bytes<Bits>(R);
    put_fp16(blk + 2 * j, quantize<Bits>(row + i0, n, q));
    for (int i = 0; i < n; ++i) blk[lora_a_quant_byte<Bits>(R, j, i)] |= uint8_t(q[i] << lora_quant_shift<Bits>(i / 4));
  }
}

template <int Bits>
void put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) {
  uint8_t q[kLoraQ8MaxRank];
  uint8_t* chunk = b + (o / C) * lora_b_chunk_bytes<Bits>(R);
  put_fp16(chunk + 2 * (o % C), quantize<Bits>(row, r, q));
  for (int j = 0; j < r; ++j) chunk[lora_b_quant_byte<Bits>(int(o % C), j)] |= uint8_t(q[j] << lora_quant_shift<Bits>(j / 4));
}

template <int Bits>
float a_value(const uint8_t* a, int R, int j, int64_t i) {
  const uint8_t* blk = a + (i / QB) * lora_a_block_bytes<Bits>(R);
  const int ii = int(i % QB);
  return get_fp16(blk + 2 * j) * float(lora_quant_value<Bits>(blk[lora_a_quant_byte<Bits>(R, j, ii)], ii / 4));
}

template <int Bits>
float b_value(const uint8_t* b, int R, int64_t o, int j) {
  const uint8_t* chunk = b + (o / C) * lora_b_chunk_bytes<Bits>(R);
  return get_fp16(chunk + 2 * (o % C)) * float(lora_quant_value<Bits>(chunk[lora_b_quant_byte<Bits>(int(o % C), j)], j / 4));
}

}  // namespace

void lora_q8_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) { put_a_row<8>(a, n_in, R, j, row); }
void lora_q8_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) { put_b_row<8>(b, R, o, row, r); }
float lora_q8_a_value(const uint8_t* a, int R, int j, int64_t i) { return a_value<8>(a, R, j, i); }
float lora_q8_b_value(const uint8_t* b, int R, int64_t o, int j) { return b_value<8>(b, R, o, j); }
void lora_q4_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) { put_a_row<4>(a, n_in, R, j, row); }
void lora_q4_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) { put_b_row<4>(b, R, o, row, r); }
float lora_q4_a_value(const uint8_t* a, int R, int j, int64_t i) { return a_value<4>(a, R, j, i); }
float lora_q4_b_value(const uint8_t* b, int R, int64_t o, int j) { return b_value<4>(b, R, o, j); }

float lora_q8_quantize_t(const float* t, int R, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < R; ++j) amax = std::max(amax, std::fabs(t[j]));
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (int j = 0; j < R; ++j) q[j] = int8_t(std::nearbyint(t[j] * id));
  return amax / 127.0f;
}

}  // namespace el::kernels
