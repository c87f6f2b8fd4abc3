// Private to kernels/x86: the vpdpbusd kernels of the AVX-VNNI table (avx2_vnni.cpp), on top of
// the AVX2 table: the operands are made unsigned as in avx2.cpp, and every block's integer dot
// stays exact. Header-only with internal linkage, so the AVX-512 path (vnni_avx512.cpp) compiles
// the same kernels with the EVEX encoding (vnni_dpbusd.h).
#pragma once
#include "../paths.h"
#include "avx2_common.h"
#include "lora_q8_tiles.h"
#include "vnni_dpbusd.h"
#include "vnni_quant_ops.h"
#include "../quant_dots.h"

namespace el::kernels {
namespace {

// Q8_0 / Q4_0 decoders (quant_dots.h: vec_dot_blocks, MicroQ): the weights are made unsigned once per block by an offset
// c (x + c >= 0), and each token's products start from the per-lane correction -c * y, made
// once per token block: (x + c).y - c.y = x.y, lane by lane, as exact as avx2.cpp's sums
// (-y needs y >= -127, as Q8_0 activations are: their quantizer scales amax to 127).
struct TokC {
  __m256i y, bias;
};
template <char C>
inline TokC offset_token(__m256i y) {
  return {y, dpbusd(_mm256_setzero_si256(), _mm256_set1_epi8(C), _mm256_sub_epi8(_mm256_setzero_si256(), y))};
}
struct DecodeQ8_0 {
  using Block = block_q8_0;
  using W = __m256i;
  using Tok = TokC;
  // x + 128 as an unsigned byte is x with its top bit flipped.
  static W weights(const Block& b) { return _mm256_xor_si256(load256(b.qs), _mm256_set1_epi8(char(0x80))); }
  static Tok token(__m256i y) { return offset_token<char(0x80)>(y); }
  static __m256i dot(W x, const Tok& t) { return dpbusd(t.bias, x, t.y); }
};
struct DecodeQ4_0 {
  using Block = block_q4_0;
  using W = __m256i;
  using Tok = TokC;
  static W weights(const Block& b) { return nibbles_32(b.qs); }  // q = x + 8
  static Tok token(__m256i y) { return offset_token<8>(y); }
  static __m256i dot(W q, const Tok& t) { return dpbusd(t.bias, q, t.y); }
};

// 4-byte dots for the 8-bit LoRA tiles (lora_q8_tiles.h): vpdpbusd on |w| x sign(x, w).
struct LoraDotVnni {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) { return dpbusd(acc, u, s); }
};

// Installs the kernels above over an AVX2 table.
inline void install_vnni_tables(KernelSet& ks) {
  install_q8_q4_dots<VnniQuantOps, DecodeQ8_0, DecodeQ4_0, 2>(ks);
  install_quant_dots<VnniQuantOps>(ks);  // Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K; Q4_K / Q6_K tiles
  install_lora_int<LoraQ8Tiles, LoraDotVnni>(ks);
}

}  // namespace
}  // namespace el::kernels
