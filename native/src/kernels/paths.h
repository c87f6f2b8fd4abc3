// Private to kernels/: how dispatch.cpp assembles each KernelSet. Every SIMD path starts
// from a copy of the scalar table and overrides the entries it implements.
#pragma once
#include <cstddef>

#include "kernels.h"
#include "matmul.h"

namespace el::kernels::detail {

// Optional rows x tokens kernel used by matmul_rows for any nr >= 1 rows (w_stride bytes
// apart) and nt >= 1 tokens starting at token t0 of act:
// out[t * out_stride + r] = W[r] . act[t0 + t]. It walks the block in register tiles, so
// each weight vector is decoded once per tile of tokens.
using TileDotFn = void (*)(int n, const uint8_t* w, size_t w_stride, int nr, const PreparedActivations& act, int t0,
                           int nt, float* out, int64_t out_stride);
struct TileKernels {
  TileDotFn by_type[kMaxTypeId] = {};
};

// The tile kernels of one of the tables dispatch.cpp built (empty for any other KernelSet).
const TileKernels& tiles(const KernelSet& ks);

// Kernels over Packed8 weights (packed.h) for the ng row groups starting at w and tokens
// t0 .. t0 + nt - 1 of act: out[t * out_stride + 8g + r] = (row r of group g) . (token t0 + t),
// as packed_matmul_ref. With nt == 1 this is the decode GEMV, one stream over the groups.
using PackedMatmulFn = void (*)(int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt,
                                float* out, int64_t out_stride);
// A path packs the weight types it has a kernel for here (matmul.h packs()).
struct PackedKernels {
  PackedMatmulFn by_type[kMaxTypeId] = {};
};
const PackedKernels& packed(const KernelSet& ks);

void fill_scalar(KernelSet& ks);
void fill_scalar_blocks32(KernelSet& ks);  // scalar_blocks32.cpp: Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_1
void fill_scalar_kquants(KernelSet& ks);   // scalar_kquants.cpp: Q2_K, Q3_K, Q5_K

#if defined(__x86_64__)
void install_avx2(KernelSet& ks, TileKernels& tk);       // x86/avx2.cpp (AVX2 + FMA + F16C)
void install_avx2_quants(KernelSet& ks, TileKernels& tk);  // x86/avx2_quants.cpp (called by install_avx2)
void install_avx2_vnni(KernelSet& ks, TileKernels& tk);  // x86/avx2_vnni.cpp (on top of install_avx2)
void install_packed_vnni(PackedKernels& pk);              // x86/packed_vnni.cpp (Q4_0, Q8_0)
void install_packed_avx2(PackedKernels& pk);              // x86/packed_avx2.cpp (Q4_0)
void install_avx512_vnni(KernelSet& ks, TileKernels& tk);  // x86/vnni_avx512.cpp (install_avx2_vnni, EVEX)
void install_packed_avx512(PackedKernels& pk);            // x86/packed_avx512.cpp (Q4_0, Q8_0)
#endif
#if defined(__aarch64__)
void install_neon(KernelSet& ks, TileKernels& tk);          // arm/neon.cpp (armv8-a baseline)
void install_neon_dotprod(KernelSet& ks, TileKernels& tk);  // arm/neon_dotprod.cpp (on top of install_neon)
void install_packed_neon_dotprod(PackedKernels& pk);        // arm/packed_dotprod.cpp (Q4_0, Q8_0)
#endif

}  // namespace el::kernels::detail
