// NEON int8 dots with the ARMv8.2 dot-product instruction (Cortex-A76, Raspberry Pi 5).
// Compiled with -march=armv8.2-a+dotprod; dispatch.cpp installs it only when the CPU
// reports ASIMDDP, on top of the baseline NEON table.
#if defined(__aarch64__)
#include "neon_int8.h"
#include "../paths.h"

namespace el::kernels {
namespace {

struct DotProd {
  static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};

}  // namespace

namespace detail {

void install_neon_dotprod(KernelSet& ks, TileKernels& tk) {
  auto& t = ks.by_type;
  t[uint32_t(TensorType::Q8_0)].vec_dot = vec_dot_q8_0_t<DotProd>;
  t[uint32_t(TensorType::Q4_0)].vec_dot = vec_dot_q4_0_t<DotProd>;
  t[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K_t<DotProd>;
  t[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K_t<DotProd>;
  tk.by_type[uint32_t(TensorType::Q8_0)] = tile_entry<MicroQ<DotProd, DecodeQ8_0>::K, 4, 4>;
  tk.by_type[uint32_t(TensorType::Q4_0)] = tile_entry<MicroQ<DotProd, DecodeQ4_0>::K, 4, 4>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
