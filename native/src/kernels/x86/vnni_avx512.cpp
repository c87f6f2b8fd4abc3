// The AVX-VNNI table's kernels (vnni_tables.h) with EVEX vpdpbusd, for CPUs with AVX-512 VNNI
// that may lack AVX-VNNI (Ice Lake, Zen 4). Compiled with AVX-512 F/BW/VL/DQ/VNNI and only called
// after dispatch.cpp has seen those features.
#if defined(__x86_64__)
#include "vnni_tables.h"

namespace el::kernels::detail {

void install_avx512_vnni(KernelSet& ks) { install_vnni_tables(ks); }

}  // namespace el::kernels::detail
#endif  // __x86_64__
