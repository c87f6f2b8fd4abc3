// AVX-VNNI kernels over Packed8 weights (packed.h), Q4_0, Q8_0, Q5_0, IQ4_NL, Q4_1 and Q5_1, and
// (packed_k.h, packed_k_tiles.h) Q4_K, Q5_K, Q6_K, Q3_K and Q2_K: one vpdpbusd per chunk
// and token gives the 4-element dots of 8 rows (see packed_tiles.h). Compiled with -mavx2
// -mfma -mf16c -mavxvnni and only called after dispatch.cpp has seen those features.
#if defined(__x86_64__)
#include "../paths.h"
#include "packed_vnni_dots.h"

namespace el::kernels {
namespace detail {

void install_packed_vnni(KernelSet& ks) {
  ks.by_type[uint32_t(TensorType::Q4_0)].packed = packed_matmul<Groups<BlockQ4_0>>;
  ks.by_type[uint32_t(TensorType::Q8_0)].packed = packed_matmul<Groups<BlockQ8_0>>;
  ks.by_type[uint32_t(TensorType::Q5_0)].packed = packed_matmul<Groups<BlockQ5_0>>;
  ks.by_type[uint32_t(TensorType::IQ4_NL)].packed = packed_matmul<Groups<BlockIQ4_NL>>;
  ks.by_type[uint32_t(TensorType::Q4_1)].packed = packed_matmul<Groups<BlockQ4_1>>;
  ks.by_type[uint32_t(TensorType::Q5_1)].packed = packed_matmul<Groups<BlockQ5_1>>;
  ks.by_type[uint32_t(TensorType::Q4_K)].packed = packed_matmul<KGroups<DotVnni, KDotsQ4_K>>;
  ks.by_type[uint32_t(TensorType::Q3_K)].packed = packed_matmul<KGroups<DotVnni, KDotsQ3_K>>;
  ks.by_type[uint32_t(TensorType::Q5_K)].packed = packed_matmul<KGroups<DotVnni, KDotsQ5_K>>;
  ks.by_type[uint32_t(TensorType::Q2_K)].packed = packed_matmul<KGroups<DotVnni, KDotsQ2_K>>;
  ks.by_type[uint32_t(TensorType::Q6_K)].packed = packed_matmul<KGroups<DotVnni, KDotsQ6_K>>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
