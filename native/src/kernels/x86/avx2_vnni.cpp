// AVX-VNNI kernels (VEX vpdpbusd: Alder Lake / N100, Zen 5), on top of the AVX2 table
// (vnni_tables.h). Compiled with -mavx2 -mfma -mf16c -mavxvnni and only called after
// dispatch.cpp has seen those features.
#if defined(__x86_64__)
#include "vnni_tables.h"

namespace el::kernels::detail {

void install_avx2_vnni(KernelSet& ks) { install_vnni_tables(ks); }

}  // namespace el::kernels::detail
#endif  // __x86_64__
