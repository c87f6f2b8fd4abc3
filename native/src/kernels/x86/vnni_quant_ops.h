// Private to kernels/x86: quant_dots.h's primitives for the VNNI paths: AVX2's, with the
// unscaled byte dots as one vpdpbusd (vnni_dpbusd.h) instead of maddubs + madd.
#pragma once
#include "avx2_quant_ops.h"
#include "vnni_dpbusd.h"

namespace el::kernels {
namespace {

struct VnniQuantOps : Avx2QuantOps {
  static I dot(I acc, V u, V s) { return dpbusd(acc, u, s); }
  static I dot_ss(I acc, V a, V s) { return dpbusd(acc, _mm256_sign_epi8(a, a), _mm256_sign_epi8(s, a)); }
};

}  // namespace
}  // namespace el::kernels
