// Private to kernels/: how dispatch.cpp assembles each path's KernelSet. Every path starts
// from the scalar table and overrides the entries it implements, in the order its installers
// are listed in dispatch.cpp.
#pragma once
#include "kernels.h"

namespace el::kernels::detail {

void fill_scalar(KernelSet& ks);
void fill_scalar_blocks32(KernelSet& ks);  // scalar_blocks32.cpp: Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_1
void fill_scalar_kquants(KernelSet& ks);   // scalar_kquants.cpp: Q2_K, Q3_K, Q5_K

#if defined(__x86_64__)
void install_avx2(KernelSet& ks);           // x86/avx2.cpp (AVX2 + FMA + F16C)
void install_avx2_quants(KernelSet& ks);    // x86/avx2_quants.cpp (called by install_avx2)
void install_avx2_vnni(KernelSet& ks);      // x86/avx2_vnni.cpp (on top of install_avx2)
void install_packed_vnni(KernelSet& ks);    // x86/packed_vnni.cpp (every packed type)
void install_packed_avx2(KernelSet& ks);    // x86/packed_avx2.cpp (Q4_0 and the K-quants)
void install_avx512_vnni(KernelSet& ks);    // x86/vnni_avx512.cpp (install_avx2_vnni, EVEX)
void install_packed_avx512(KernelSet& ks);  // x86/packed_avx512.cpp (every packed type)
#endif
#if defined(__aarch64__)
void install_neon(KernelSet& ks);                 // arm/neon.cpp (armv8-a baseline)
void install_neon_dotprod(KernelSet& ks);         // arm/neon_dotprod.cpp (on top of install_neon)
void install_packed_neon_dotprod(KernelSet& ks);  // arm/packed_dotprod.cpp (every packed type)
#endif

}  // namespace el::kernels::detail
