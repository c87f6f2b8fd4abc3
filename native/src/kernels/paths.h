// Private to kernels/: how dispatch.cpp assembles each KernelSet. Every SIMD path starts
// from a copy of the scalar table and overrides the entries it implements.
#pragma once
#include "kernels.h"

namespace el::kernels::detail {

void fill_scalar(KernelSet& ks);

#if defined(__x86_64__)
void install_avx2(KernelSet& ks);  // x86/avx2.cpp (AVX2 + FMA + F16C)
#endif
#if defined(__aarch64__)
void install_neon(KernelSet& ks);          // arm/neon.cpp (armv8-a baseline)
void install_neon_dotprod(KernelSet& ks);  // arm/neon_dotprod.cpp (on top of install_neon)
#endif

}  // namespace el::kernels::detail
