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

int64_t a_block_bytes(int R) { return int64_t(QB + 2) * R; }
int64_t b_chunk_bytes(int R) { return 2 * C + int64_t(C) * R; }
// Byte of element (j, i) inside an A block: groups of 4 inputs, then ranks, then the 4 inputs.
int64_t a_quant_offset(int R, int j, int i) { return 2 * int64_t(R) + (i / 4) * int64_t(R) * 4 + j * 4 + i % 4; }
// Byte of element (o, j) inside a B chunk: groups of 4 ranks, then 8 outputs, then the 4 ranks.
int64_t b_quant_offset(int o, int j) { return 2 * C + (j / 4) * C * 4 + o * 4 + j % 4; }

void put_fp16(uint8_t* p, float v) {
  const fp16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, sizeof h);
}
float get_fp16(const uint8_t* p) {
  fp16_t h;
  std::memcpy(&h, p, sizeof h);
  return fp16_to_fp32(h);
}

// ggml's Q8_0 rule for n values: returns d, writes q.
float quantize(const float* v, int n, int8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = int8_t(std::lround(v[i] * id));
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

// 4-bit: element (j, i) of an A block is in the byte of 8-bit group (i / 4) / 2 (the low
// nibble for an even group, the high for an odd one); (o, j) of a B chunk likewise by j / 4.
int64_t a4_byte(int R, int j, int i) { return 2 * int64_t(R) + (i / 8) * int64_t(R) * 4 + j * 4 + i % 4; }
int a4_shift(int i) { return (i / 4) % 2 * 4; }
int64_t b4_byte(int o, int j) { return 2 * C + (j / 8) * C * 4 + o * 4 + j % 4; }
int b4_shift(int j) { return (j / 4) % 2 * 4; }
int64_t a4_block_bytes(int R) { return int64_t(QB / 2 + 2) * R; }
int64_t b4_chunk_bytes(int R) { return 2 * C + int64_t(C) * R / 2; }

}  // namespace

void lora_q8_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) {
  for (int64_t i0 = 0; i0 < n_in; i0 += QB) {
    const int n = int(std::min<int64_t>(QB, n_in - i0));
    int8_t q[QB];
    uint8_t* blk = a + (i0 / QB) * a_block_bytes(R);
    put_fp16(blk + 2 * j, quantize(row + i0, n, q));
    for (int i = 0; i < n; ++i) blk[a_quant_offset(R, j, i)] = uint8_t(q[i]);
  }
}

void lora_q8_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) {
  int8_t q[kLoraQ8MaxRank];
  uint8_t* chunk = b + (o / C) * b_chunk_bytes(R);
  put_fp16(chunk + 2 * (o % C), quantize(row, r, q));
  for (int j = 0; j < r; ++j) chunk[b_quant_offset(int(o % C), j)] = uint8_t(q[j]);
}

float lora_q8_quantize_t(const float* t, int R, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < R; ++j) amax = std::max(amax, std::fabs(t[j]));
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (int j = 0; j < R; ++j) q[j] = int8_t(std::nearbyint(t[j] * id));
  return amax / 127.0f;
}

float lora_q8_a_value(const uint8_t* a, int R, int j, int64_t i) {
  const uint8_t* blk = a + (i / QB) * a_block_bytes(R);
  return get_fp16(blk + 2 * j) * float(int8_t(blk[a_quant_offset(R, j, int(i % QB))]));
}

float lora_q8_b_value(const uint8_t* b, int R, int64_t o, int j) {
  const uint8_t* chunk = b + (o / C) * b_chunk_bytes(R);
  return get_fp16(chunk + 2 * (o % C)) * float(int8_t(chunk[b_quant_offset(int(o % C), j)]));
}

void lora_q4_put_a_row(uint8_t* a, int64_t n_in, int R, int j, const float* row) {
  for (int64_t i0 = 0; i0 < n_in; i0 += QB) {
    const int n = int(std::min<int64_t>(QB, n_in - i0));
    uint8_t q[QB];
    uint8_t* blk = a + (i0 / QB) * a4_block_bytes(R);
    put_fp16(blk + 2 * j, quantize4(row + i0, n, q));
    // Inputs past n_in keep nibble 0 (the zeroed region), which the zero activations there cancel.
    for (int i = 0; i < n; ++i) blk[a4_byte(R, j, i)] |= uint8_t(q[i] << a4_shift(i));
  }
}

void lora_q4_put_b_row(uint8_t* b, int R, int64_t o, const float* row, int r) {
  uint8_t q[kLoraQ8MaxRank];
  uint8_t* chunk = b + (o / C) * b4_chunk_bytes(R);
  put_fp16(chunk + 2 * (o % C), quantize4(row, r, q));
  // Ranks r..R-1 keep nibble 0: the expand's quantized t is zero there.
  for (int j = 0; j < r; ++j) chunk[b4_byte(int(o % C), j)] |= uint8_t(q[j] << b4_shift(j));
}

float lora_q4_a_value(const uint8_t* a, int R, int j, int64_t i) {
  const uint8_t* blk = a + (i / QB) * a4_block_bytes(R);
  const int ii = int(i % QB);
  return get_fp16(blk + 2 * j) * float(((blk[a4_byte(R, j, ii)] >> a4_shift(ii)) & 15) - 8);
}

float lora_q4_b_value(const uint8_t* b, int R, int64_t o, int j) {
  const uint8_t* chunk = b + (o / C) * b4_chunk_bytes(R);
  return get_fp16(chunk + 2 * (o % C)) * float(((chunk[b4_byte(int(o % C), j)] >> b4_shift(j)) & 15) - 8);
}

}  // namespace el::kernels
