// The AVX2 Q8_1 activation quantizer (the activations of Q4_1 and Q5_1). Compiled with -mavx2
// -mfma -mf16c; part of every x86 path's table.
#if defined(__x86_64__)
#include "../paths.h"
#include "avx2_common.h"

namespace el::kernels {
namespace {

// Q8_1 activations (Q4_1, Q5_1): Q8_0's quants and scale, and s = fp16(d * sum of the quants).
void q8_1_from_float(const float* x, void* vy, int64_t n) {
  block_q8_1* y = static_cast<block_q8_1*>(vy);
  for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
    float amax;
    const __m256i q = quantize_32_q8(x, &y[i].d, &amax);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
    // The quants' sum: bytes times 1 (maddubs' unsigned operand), pairs widened by madd.
    const int sum = hsum(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1)));
    y[i].s = _cvtss_sh(amax / 127.f * float(sum), _MM_FROUND_TO_NEAREST_INT);
  }
}

}  // namespace

namespace detail {

void install_avx2_quants(KernelSet& ks) { ks.by_type[uint32_t(TensorType::Q8_1)].from_float = q8_1_from_float; }

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
