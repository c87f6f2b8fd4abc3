// Private to kernels/: how dispatch.cpp assembles each KernelSet. Every SIMD path starts
// from a copy of the scalar table and overrides the entries it implements.
#pragma once
#include <cstddef>

#include "kernels.h"

namespace el::kernels::detail {

// Optional rows x tokens tile used by matmul_rows: out[t * out_stride + r] = W[r] . act[t]
// for r < nr <= kTileRows and t < nt <= kTileToks, rows w_stride bytes apart, activation rows
// a_stride bytes apart. Each weight block is decoded once for all tokens of the tile.
constexpr int kTileRows = 4;
constexpr int kTileToks = 4;
using TileDotFn = void (*)(int n, const uint8_t* w, size_t w_stride, int nr, const uint8_t* a, size_t a_stride,
                           int nt, float* out, int64_t out_stride);
struct TileKernels {
  TileDotFn by_type[kMaxTypeId] = {};
};

// The tile kernels of one of the tables dispatch.cpp built (empty for any other KernelSet).
const TileKernels& tiles(const KernelSet& ks);

void fill_scalar(KernelSet& ks);

#if defined(__x86_64__)
void install_avx2(KernelSet& ks, TileKernels& tk);  // x86/avx2.cpp (AVX2 + FMA + F16C)
#endif
#if defined(__aarch64__)
void install_neon(KernelSet& ks, TileKernels& tk);          // arm/neon.cpp (armv8-a baseline)
void install_neon_dotprod(KernelSet& ks, TileKernels& tk);  // arm/neon_dotprod.cpp (on top of install_neon)
#endif

}  // namespace el::kernels::detail
