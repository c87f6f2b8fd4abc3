// NEON int8 dots with the ARMv8.2 dot-product instruction (Cortex-A76, Raspberry Pi 5).
// Compiled with -march=armv8.2-a+dotprod; dispatch.cpp installs it only when the CPU
// reports ASIMDDP, on top of the baseline NEON table.
#if defined(__aarch64__)
#include "lora_q8_tiles.h"
#include "neon_int8.h"
#include "neon_quant_ops.h"
#include "../paths.h"
#include "../quant_dots.h"

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

void install_neon_dotprod(KernelSet& ks, TileKernels& tk) {
  auto& t = ks.by_type;
  t[uint32_t(TensorType::Q8_0)].vec_dot = vec_dot_q8_0_t<DotProd>;
  t[uint32_t(TensorType::Q4_0)].vec_dot = vec_dot_q4_0_t<DotProd>;
  t[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K_t<DotProd>;
  t[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K_t<DotProd>;
  install_quant_dots<NeonQuantOps<DotProd>>(ks, tk);
  tk.by_type[uint32_t(TensorType::Q8_0)] = tile_entry<MicroQ<DotProd, DecodeQ8_0>::K, 4, 4>;
  tk.by_type[uint32_t(TensorType::Q4_0)] = tile_entry<MicroQ<DotProd, DecodeQ4_0>::K, 4, 4>;
  ks.lora_shrink_q8 = lora_shrink_by_tiles<LoraShrinkQ8<LoraDot4Sdot>::Tile>;
  ks.lora_expand_q8 = lora_expand_q8_by_tiles<LoraExpandQ8<LoraDot4Sdot>::Tile>;
  ks.lora_shrink_q4 = lora_shrink_by_tiles<LoraShrinkQ8<LoraDot4Sdot, 4>::Tile>;
  ks.lora_expand_q4 = lora_expand_q4_by_tiles<LoraExpandQ8<LoraDot4Sdot, 4>::Tile>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
