// Private to kernels/: the ISA-independent part of the LoRA shrink/expand kernels (kernels.h),
// shared by the AVX2 and NEON paths: how one call is cut into register tiles, and the partial
// last chunk of outputs. Header-only with internal linkage: each translation unit compiles its
// own copy with its own ISA flags.
//
// An ISA supplies two tile templates with a static run():
//   ShrinkTile<T, V>::run(n_in, R, at, v0, x, coeff, t)  T tokens x V groups of 8 ranks from rank 8 * v0
//   ExpandTile<T, C>::run(R, b, t, y, o)                 T tokens x C chunks of 8 outputs from output o
// Every tile keeps scalar.cpp's operation order per element, so the tiling never changes a bit.
//
// The 8-bit pool's kernels (kernels.h) have the same shape, with int8 operands:
//   ShrinkQ8Tile<T, V>::run(n_in, R, a, v0, x, coeff, t)   x: block_q8_0 rows
//   ExpandQ8Tile<T, C>::run(R, b, t, y, o)                   t: LoraQ8T, the tokens' quantized t
// and the 4-bit pool's the same again, their B chunks addressed as LoraQ4Byte.
#pragma once
#include <cstdint>
#include <cstring>

#include "../tensor_types.h"
#include "kernels.h"

namespace el::kernels {
namespace {

// Tiles of at most 8 accumulator vectors of 8 floats: more tokens, fewer rank groups or chunks.
template <int T>
constexpr int kLoraVectorsPerTile = T == 1 ? 4 : T == 2 ? 2 : 1;

// The 8-bit expand's per-token operands, token k's at offset k like the F16 expand's t.
struct LoraQ8T {
  const int8_t* const* q;  // quantized t, R values per token
  const float* d;          // its scale per token
  LoraQ8T operator+(int k) const { return {q + k, d + k}; }
};

// Elements (of B's element type) in one chunk of 8 outputs: F16 R x 8 values; 8-bit 8 fp16
// scales and R x 8 bytes (kernels.h).
constexpr int64_t lora_chunk_elems(const fp16_t*, int R) { return int64_t(R) * kLoraOutChunk; }
constexpr int64_t lora_chunk_elems(const uint8_t*, int R) { return lora_b_chunk_bytes<8>(R); }

// The 4-bit layouts' element: a byte of two nibbles (kernels.h), so that the drivers step
// through B in chunks of 16 + 4 R bytes.
struct LoraQ4Byte {
  uint8_t v;
};
constexpr int64_t lora_chunk_elems(const LoraQ4Byte*, int R) { return lora_b_chunk_bytes<4>(R); }

// Both pool layouts share the tiling below: W is the weights' element type (fp16_t or uint8_t),
// X the activation rows' (float or block_q8_0), and Toks the expand's per-token operands (the
// rows of t, or LoraQ8T).
template <template <int, int> class Tile, int T, class W, class X>
void lora_shrink_tokens(int n_in, int R, const W* a, const X* const* x, const float* coeff, float* const* t) {
  constexpr int VM = kLoraVectorsPerTile<T>;
  const int nv = R / 8;
  int v = 0;
  for (; v + VM <= nv; v += VM) Tile<T, VM>::run(n_in, R, a, v, x, coeff, t);
  if constexpr (VM > 2)
    for (; v + 2 <= nv; v += 2) Tile<T, 2>::run(n_in, R, a, v, x, coeff, t);
  for (; v < nv; ++v) Tile<T, 1>::run(n_in, R, a, v, x, coeff, t);
}

// KernelSet::lora_shrink_f16 / lora_shrink_q8 over a ShrinkTile / ShrinkQ8Tile.
template <template <int, int> class Tile, class W, class X>
void lora_shrink_by_tiles(int n_in, int R, const W* a, int n_tok, const X* const* x, const float* coeff,
                          float* const* t) {
  switch (n_tok) {
    case 1: return lora_shrink_tokens<Tile, 1>(n_in, R, a, x, coeff, t);
    case 2: return lora_shrink_tokens<Tile, 2>(n_in, R, a, x, coeff, t);
    case 3: return lora_shrink_tokens<Tile, 3>(n_in, R, a, x, coeff, t);
    default: return lora_shrink_tokens<Tile, 4>(n_in, R, a, x, coeff, t);
  }
}

template <template <int, int> class Tile, int T, class W, class Toks>
void lora_expand_tokens(int64_t o0, int64_t o1, int R, const W* b, Toks t, float* const* y) {
  constexpr int C = kLoraVectorsPerTile<T>;  // enough independent chains to hide FMA latency
  const int64_t chunk = lora_chunk_elems(b, R);
  const W* end = b + (o1 + 7) / 8 * chunk;
  constexpr int64_t ahead = kLoraPrefetchBytes / int64_t(sizeof(W));
  int64_t o = o0;
  for (; o + 8 * C <= o1; o += 8 * C) {
    lora_prefetch(b + (o / 8) * chunk + ahead, end, C * chunk * int64_t(sizeof(W)));
    Tile<T, C>::run(R, b + (o / 8) * chunk, t, y, o);
  }
  for (; o + 8 <= o1; o += 8) Tile<T, 1>::run(R, b + (o / 8) * chunk, t, y, o);
  if (o == o1) return;
  // A last partial chunk goes through the same vector code on a copy of its outputs.
  alignas(32) float tail[T][8] = {};
  float* tp[T];
  const size_t n = size_t(o1 - o);
  for (int k = 0; k < T; ++k) {
    std::memcpy(tail[k], y[k] + o, n * sizeof(float));
    tp[k] = tail[k];
  }
  Tile<T, 1>::run(R, b + (o / 8) * chunk, t, tp, 0);
  for (int k = 0; k < T; ++k) std::memcpy(y[k] + o, tail[k], n * sizeof(float));
}

// Tokens with different adapters: one-token tiles, the tokens interleaved chunk by chunk, so
// their n_tok streams are read side by side. One stream at a time leaves the core waiting on
// each cold start (a thread's slice of rows is often only a few KiB per adapter); several in
// flight let the memory system overlap them (measured 1.4x on 2 KiB slices, up to 4x on 11 KiB).
template <template <int, int> class Tile, class W, class Toks>
void lora_expand_each(int64_t o0, int64_t o1, int R, const W* const* b, int n_tok, Toks t, float* const* y) {
  constexpr int C = kLoraVectorsPerTile<1>;
  const int64_t chunk = lora_chunk_elems(b[0], R);
  constexpr int64_t ahead = kLoraPrefetchBytes / int64_t(sizeof(W));
  const int64_t n_chunks = (o1 + 7) / 8;
  int64_t o = o0;
  for (; o + 8 * C <= o1; o += 8 * C)
    for (int k = 0; k < n_tok; ++k) {
      lora_prefetch(b[k] + (o / 8) * chunk + ahead, b[k] + n_chunks * chunk, C * chunk * int64_t(sizeof(W)));
      Tile<1, C>::run(R, b[k] + (o / 8) * chunk, t + k, y + k, o);
    }
  for (int k = 0; k < n_tok; ++k) lora_expand_tokens<Tile, 1>(o, o1, R, b[k], t + k, y + k);
}

// One adapter for every token (a group) shares each chunk's loads across the tokens; different
// adapters go through lora_expand_each.
template <template <int, int> class Tile, class W, class Toks>
void lora_expand_tiles(int64_t o0, int64_t o1, int R, const W* const* bs, int n_tok, Toks t, float* const* y) {
  const W* b = bs[0];
  for (int k = 1; k < n_tok; ++k)
    if (bs[k] != b) return lora_expand_each<Tile>(o0, o1, R, bs, n_tok, t, y);
  switch (n_tok) {
    case 1: return lora_expand_tokens<Tile, 1>(o0, o1, R, b, t, y);
    case 2: return lora_expand_tokens<Tile, 2>(o0, o1, R, b, t, y);
    case 3: return lora_expand_tokens<Tile, 3>(o0, o1, R, b, t, y);
    default: return lora_expand_tokens<Tile, 4>(o0, o1, R, b, t, y);
  }
}

// KernelSet::lora_expand_f16 over ExpandTile.
template <template <int, int> class Tile>
void lora_expand_by_tiles(int64_t o0, int64_t o1, int R, const fp16_t* const* b, int n_tok, const float* const* t,
                          float* const* y) {
  lora_expand_tiles<Tile>(o0, o1, R, b, n_tok, t, y);
}

// KernelSet::lora_expand_q8 over ExpandQ8Tile.
template <template <int, int> class Tile>
void lora_expand_q8_by_tiles(int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok,
                             const int8_t* const* tq, const float* td, float* const* y) {
  lora_expand_tiles<Tile>(o0, o1, R, b, n_tok, LoraQ8T{tq, td}, y);
}

// KernelSet::lora_expand_q4 over a 4-bit ExpandQ8Tile (run takes const LoraQ4Byte*).
template <template <int, int> class Tile>
void lora_expand_q4_by_tiles(int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok,
                             const int8_t* const* tq, const float* td, float* const* y) {
  lora_expand_tiles<Tile>(o0, o1, R, reinterpret_cast<const LoraQ4Byte* const*>(b), n_tok, LoraQ8T{tq, td}, y);
}

// The 8-bit and 4-bit pools' kernels of a path: Tiles<Dot, Bits>::Shrink / ::Expand, its
// register tiles over its 4-byte dot Dot (x86/lora_q8_tiles.h, arm/lora_q8_tiles.h).
template <template <class, int> class Tiles, class Dot>
void install_lora_int(KernelSet& ks) {
  ks.lora_shrink_q8 = lora_shrink_by_tiles<Tiles<Dot, 8>::template Shrink>;
  ks.lora_expand_q8 = lora_expand_q8_by_tiles<Tiles<Dot, 8>::template Expand>;
  ks.lora_shrink_q4 = lora_shrink_by_tiles<Tiles<Dot, 4>::template Shrink>;
  ks.lora_expand_q4 = lora_expand_q4_by_tiles<Tiles<Dot, 4>::template Expand>;
}

}  // namespace
}  // namespace el::kernels
