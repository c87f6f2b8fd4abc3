// Kernel dispatch: one table of function pointers per instruction-set path.
// The scalar path (scalar.cpp) is the reference; x86 (AVX2+FMA+F16C, and the AVX-VNNI
// variant) and arm (NEON, and the ASIMDDP dot-product variant) override entries; an entry a SIMD path does
// not provide falls back to the scalar one. The best path is chosen once, by CPU
// detection, and can be forced by name (tests, benchmarks) or by EDGELORA_KERNELS.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../tensor_types.h"

namespace el::kernels {

// out[0] = dot(weight row w (type T, n elements), activation row a (T's vec_dot_type)).
using VecDotFn = void (*)(int n, float* out, const void* w, const void* a);
// Convert n floats into a row of the type (quantize / round). n is a multiple of the block size.
using FromFloatFn = void (*)(const float* x, void* y, int64_t n);
// Convert a row of the type to n floats.
using ToFloatFn = void (*)(const void* x, float* y, int64_t n);

struct PreparedActivations;  // matmul.h

// Rows x tokens kernel used by matmul_rows for any nr >= 1 rows (w_stride bytes apart) and
// nt >= 1 tokens starting at token t0 of act: out[t * out_stride + r] = W[r] . act[t0 + t]. It
// walks the block in register tiles (tiles.h), so each weight vector is decoded once per tile.
using TileDotFn = void (*)(int n, const uint8_t* w, size_t w_stride, int nr, const PreparedActivations& act, int t0,
                           int nt, float* out, int64_t out_stride);
// Kernel over Packed8 weights (packed.h) for the ng row groups starting at w and tokens
// t0 .. t0 + nt - 1 of act: out[t * out_stride + 8g + r] = (row r of group g) . (token t0 + t),
// as packed_matmul_ref. With nt == 1 this is the decode GEMV, one stream over the groups.
using PackedMatmulFn = void (*)(int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt,
                                float* out, int64_t out_stride);

// One row of a path's table: what it computes for one tensor type.
struct TypeKernels {
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;
  VecDotFn vec_dot = nullptr;        // only for weight types (pairs with traits.vec_dot_type)
  TileDotFn tile = nullptr;          // matmul_rows over several tokens; null: vec_dot per row and token
  PackedMatmulFn packed = nullptr;   // Packed8 weights; non-null: the model loader packs this type
};

constexpr int kMaxTypeId = 32;

// LoRA kernel layout: ranks padded to a multiple of 8 (one AVX2 vector, two NEON vectors),
// outputs grouped in chunks of 8; at most 4 tokens per kernel call (one register tile).
constexpr int kLoraRankStep = 8;
constexpr int kLoraOutChunk = 8;
constexpr int kLoraMaxTokens = 4;
// LoRA rows are short streams (one per token and projection) that the hardware prefetcher
// picks up late: the kernels ask for lines this far ahead, never past the rows a call reads.
// Their speed is set by the memory system, not the kernels: on a plain read of scattered
// streams, one thread got 9.6 GB/s from 16 KiB streams and 27 from long ones, and the 8-bit
// expand kernel matched that read. In the batched step, a distance of 0, 4 or 16 KiB (and
// prefetchnta/t1/t2) made no measurable difference.
constexpr int64_t kLoraPrefetchBytes = 4096;
// Software prefetch of [from, from + bytes), clipped at `end`: a short slice of rows (a
// thread's share of one projection) must not pull in the next adapter's rows, which costs
// bandwidth and stalls on full miss buffers (measured: 30% of the expand's time).
inline void lora_prefetch(const void* from, const void* end, int64_t bytes) {
  const char* p = static_cast<const char*>(from);
  const char* e = std::min(p + bytes, static_cast<const char*>(end));
  for (; p < e; p += 64) __builtin_prefetch(p);
}

// The 8-bit pool (lora/lora_pool.h, LoraPoolType::Q8): int8 weights with fp16 scales, and int8
// activations, so both kernels are integer dot products (vpdpbusd / maddubs / sdot) over half
// the bytes of F16. Layouts for padded rank R (a multiple of kLoraRankStep):
//   A: ceil(n_in / 32) blocks; block b is fp16 d[R], then int8 q[8][R][4] where q[g][j][e] is
//      A[j][32b + 4g + e] / d[j], 0 past n_in: 4 consecutive inputs of one rank are 4 bytes,
//      one 4-byte dot-product lane. Bytes: lora_q8_a_bytes.
//   B: ceil(n_out / 8) chunks; chunk c is fp16 d[8], then int8 q[R / 4][8][4] where q[g][o][e]
//      is B[8c + o][4g + e] / d[o] (a scale per output row over its ranks). Bytes: lora_q8_b_bytes.
// Weights are quantized by ggml's Q8_0 rule (d = amax / 127, q = round(v / d)); lora_q8.h
// writes and reads these layouts.
constexpr int kLoraQ8Block = 32;  // inputs per A block = one block_q8_0 of activations
// Largest padded rank of the 8-bit pool: keeps every integer sum exact in a float (< 2^24).
constexpr int kLoraQ8MaxRank = 512;
// Bytes of one A block (32 inputs) and of one B chunk (8 outputs) at padded rank R, for the
// 8-bit layouts (Bits 8) and the 4-bit ones below (Bits 4): fp16 scales, then the quants.
template <int Bits>
constexpr int64_t lora_a_block_bytes(int R) {
  return int64_t(kLoraQ8Block * Bits / 8 + 2) * R;
}
template <int Bits>
constexpr int64_t lora_b_chunk_bytes(int R) {
  return 2 * kLoraOutChunk + int64_t(kLoraOutChunk) * R * Bits / 8;
}
constexpr int64_t lora_q8_a_bytes(int64_t n_in, int R) {
  return (n_in + kLoraQ8Block - 1) / kLoraQ8Block * lora_a_block_bytes<8>(R);
}
constexpr int64_t lora_q8_b_bytes(int64_t n_out, int R) {
  return (n_out + kLoraOutChunk - 1) / kLoraOutChunk * lora_b_chunk_bytes<8>(R);
}

// The 4-bit pool (LoraPoolType::Q4, opt-in) keeps the 8-bit layouts' shapes and scales with
// half the quant bytes: where the 8-bit layout has the 4-byte groups g = 2p and 2p + 1 (R x 4
// bytes each), the 4-bit one has one R x 4 byte region p whose low nibbles are group 2p and
// high nibbles group 2p + 1. A nibble n stands for n - 8 (ggml's Q4_0 rule: d = -max / 8 for the
// value of largest magnitude, n = min(15, trunc(v / d + 8.5))). Bytes: A blocks of 18 R, B
// chunks of 16 + 4 R. The kernels are the 8-bit ones on those values, with the same operation
// order, so again every path gives the same bits.
constexpr int64_t lora_q4_a_bytes(int64_t n_in, int R) {
  return (n_in + kLoraQ8Block - 1) / kLoraQ8Block * lora_a_block_bytes<4>(R);
}
constexpr int64_t lora_q4_b_bytes(int64_t n_out, int R) {
  return (n_out + kLoraOutChunk - 1) / kLoraOutChunk * lora_b_chunk_bytes<4>(R);
}

struct KernelSet {
  const char* name = "scalar";  // "scalar", "avx2", "avx2-vnni", "avx512-vnni", "neon", "neon-dotprod"
  TypeKernels by_type[kMaxTypeId];

  // Float vector ops used by attention, norms and LoRA.
  float (*dot_f32)(int n, const float* a, const float* b) = nullptr;
  float (*dot_f16_f32)(int n, const fp16_t* a, const float* b) = nullptr;
  void (*axpy_f32)(int n, float alpha, const float* x, float* y) = nullptr;   // y += alpha*x
  void (*axpy_f16)(int n, float alpha, const fp16_t* x, float* y) = nullptr;  // y += alpha*x
  // Attention over a block of n cached positions whose F16 rows (hd values each) are `stride`
  // elements apart (one KV head of the paged cache): scores[j] = scale * (k_j . q), and
  // out[i] += sum_j w[j] * v_j[i] in order of j. One call per block instead of one per position.
  void (*attn_scores_f16)(int hd, int n, const fp16_t* k, int64_t stride, const float* q, float scale,
                          float* scores) = nullptr;
  void (*attn_values_f16)(int hd, int n, const float* w, const fp16_t* v, int64_t stride, float* out) = nullptr;
  // Attention's softmax in place: x[j] = exp(x[j] - max) / sum. SIMD paths use the polynomial
  // exp of silu_mul and a float sum, so they agree with scalar to ~1e-6, not bitwise.
  void (*softmax_f32)(int n, float* x) = nullptr;
  // The SwiGLU gate: g[i] = g[i] / (1 + exp(-g[i])) * u[i]. SIMD paths use a polynomial exp
  // (within 2 ulp of expf, as ggml's vector SiLU), so they agree with scalar to ~1e-6, not bitwise.
  void (*silu_mul)(int64_t n, float* g, const float* u) = nullptr;

  // Batched LoRA over the slot pool's F16 layouts (lora/lora_pool.h); R, the padded rank,
  // is a multiple of kLoraRankStep, and n_tok is 1..kLoraMaxTokens.
  // Shrink: t_k[j] = coeff[k] * sum_i x_k[i] * at[i * R + j] for j < R (at: n_in rows of R).
  void (*lora_shrink_f16)(int n_in, int R, const fp16_t* at, int n_tok, const float* const* x, const float* coeff,
                          float* const* t) = nullptr;
  // Expand over outputs [o0, o1) (o0 % kLoraRankStep == 0): y_k[o] += sum_j t_k[j] * B_k[j][o],
  // where B_k is stored in chunks of 8 outputs: element (j, o) at b[k][(o / 8) * R * 8 + j * 8 + o % 8].
  // b[k] is token k's adapter: tokens of one adapter share loads, different adapters are read
  // side by side.
  void (*lora_expand_f16)(int64_t o0, int64_t o1, int R, const fp16_t* const* b, int n_tok, const float* const* t,
                          float* const* y) = nullptr;

  // The same over the 8-bit layouts above; every path gives the same bits (integer sums are
  // exact, and the float operations below run in this order everywhere).
  // Shrink: x_k is a row of ceil(n_in / 32) block_q8_0 (zeros past n_in). Per token k, rank j:
  //   acc = 0; for each block b in order: acc = fma(fp16(x_k[b].d) * fp16(d_b[j]), float(sum of
  //   the block's 32 products q_a * q_x), acc); then t_k[j] = coeff[k] * acc.
  void (*lora_shrink_q8)(int n_in, int R, const uint8_t* a, int n_tok, const block_q8_0* const* x,
                         const float* coeff, float* const* t) = nullptr;
  // Expand over outputs [o0, o1) (o0 % 8 == 0) from each token's t quantized once by
  // lora_q8_quantize_t (lora_q8.h), t_k ~ td[k] * tq_k: y_k[o] = fma(td[k] * fp16(d_c[o % 8]),
  // float(sum_j q_b[o][j] * tq_k[j]), y_k[o]), c the chunk of o.
  void (*lora_expand_q8)(int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok, const int8_t* const* tq,
                         const float* td, float* const* y) = nullptr;
  // The same over the 4-bit layouts: q_a and q_b above are nibble - 8.
  void (*lora_shrink_q4)(int n_in, int R, const uint8_t* a, int n_tok, const block_q8_0* const* x,
                         const float* coeff, float* const* t) = nullptr;
  void (*lora_expand_q4)(int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok, const int8_t* const* tq,
                         const float* td, float* const* y) = nullptr;

  const TypeKernels& of(TensorType t) const { return by_type[static_cast<uint32_t>(t)]; }
};

// The reference path; always available.
const KernelSet& scalar();
// The path picked for this CPU (once, cached). EDGELORA_KERNELS=scalar|avx2|avx2-vnni|neon|neon-dotprod
// forces a path when the CPU supports it.
const KernelSet& best();
// Every path this binary has and this CPU can run, scalar first (for tests and benchmarks).
std::vector<const KernelSet*> available();
// A path by name, or nullptr when not compiled in or not supported by this CPU.
const KernelSet* by_name(const char* name);

}  // namespace el::kernels
