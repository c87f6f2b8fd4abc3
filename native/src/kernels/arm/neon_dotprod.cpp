// NEON int8 dots with the ARMv8.2 dot-product instruction (Cortex-A76, Raspberry Pi 5).
// Compiled with -march=armv8.2-a+dotprod; dispatch.cpp installs it only when the CPU
// reports ASIMDDP, on top of the baseline NEON table.
#if defined(__aarch64__)
#include "neon_int8.h"

namespace el::kernels {
namespace {

struct DotProd {
  static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};

// The LoRA tiles' 4-byte dot (lora_q8_tiles.h): sdot by element, so x's 4 bytes need no broadcast.
struct LoraDot4Sdot {
  using Acc = int32x4_t;
  static inline Acc zero() { return vdupq_n_s32(0); }
  template <int L>
  static inline void dot(Acc& acc, int8x16_t w, int8x16_t x) { acc = vdotq_laneq_s32(acc, w, x, L); }
  static inline int32x4_t sum(const Acc& acc) { return acc; }
};

}  // namespace

namespace detail {

void install_neon_dotprod(KernelSet& ks) { install_neon_int8<DotProd, LoraDot4Sdot>(ks); }

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
