// AVX2 dot products of Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K and Q5_K: quant_dots.h over
// Avx2QuantOps. Compiled with -mavx2 -mfma -mf16c; part of every x86 path's table.
#if defined(__x86_64__)
#include "../paths.h"
#include "../quant_dots.h"
#include "avx2_quant_ops.h"

namespace el::kernels::detail {

void install_avx2_quants(KernelSet& ks, TileKernels& tk) { install_quant_dots<Avx2QuantOps>(ks, tk); }

}  // namespace el::kernels::detail
#endif  // __x86_64__
