// Kernel dispatch: one table of function pointers per instruction-set path.
// The scalar path (scalar.cpp) is the reference; x86 (AVX2+FMA+F16C, and the AVX-VNNI
// variant) and arm (NEON, and the ASIMDDP dot-product variant) override entries; an entry a SIMD path does
// not provide falls back to the scalar one. The best path is chosen once, by CPU
// detection, and can be forced by name (tests, benchmarks) or by EDGELORA_KERNELS.
#pragma once
#include <cstdint>
#include <vector>

#include "../tensor_types.h"

namespace el::kernels {

// out[0] = dot(weight row w (type T, n elements), activation row a (T's vec_dot_type)).
using VecDotFn = void (*)(int n, float* out, const void* w, const void* a);
// Convert n floats into a row of the type (quantize / round). n is a multiple of the block size.
using FromFloatFn = void (*)(const float* x, void* y, int64_t n);
// Convert a row of the type to n floats.
using ToFloatFn = void (*)(const void* x, float* y, int64_t n);

struct TypeKernels {
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;
  VecDotFn vec_dot = nullptr;  // only for weight types (pairs with traits.vec_dot_type)
};

constexpr int kMaxTypeId = 32;

// LoRA kernel layout: ranks padded to a multiple of 8 (one AVX2 vector, two NEON vectors),
// outputs grouped in chunks of 8; at most 4 tokens per kernel call (one register tile).
constexpr int kLoraRankStep = 8;
constexpr int kLoraOutChunk = 8;
constexpr int kLoraMaxTokens = 4;

struct KernelSet {
  const char* name = "scalar";  // "scalar", "avx2", "avx2-vnni", "neon", "neon-dotprod"
  TypeKernels by_type[kMaxTypeId];

  // Float vector ops used by attention, norms and LoRA.
  float (*dot_f32)(int n, const float* a, const float* b) = nullptr;
  float (*dot_f16_f32)(int n, const fp16_t* a, const float* b) = nullptr;
  void (*axpy_f32)(int n, float alpha, const float* x, float* y) = nullptr;   // y += alpha*x
  void (*axpy_f16)(int n, float alpha, const fp16_t* x, float* y) = nullptr;  // y += alpha*x

  // Batched LoRA over the slot pool's F16 layouts (lora/lora_pool.h); R, the padded rank,
  // is a multiple of kLoraRankStep, and n_tok is 1..kLoraMaxTokens.
  // Shrink: t_k[j] = coeff[k] * sum_i x_k[i] * at[i * R + j] for j < R (at: n_in rows of R).
  void (*lora_shrink_f16)(int n_in, int R, const fp16_t* at, int n_tok, const float* const* x, const float* coeff,
                          float* const* t) = nullptr;
  // Expand over outputs [o0, o1) (o0 % kLoraRankStep == 0): y_k[o] += sum_j t_k[j] * B[j][o],
  // where B is stored in chunks of 8 outputs: element (j, o) at b[(o / 8) * R * 8 + j * 8 + o % 8].
  void (*lora_expand_f16)(int64_t o0, int64_t o1, int R, const fp16_t* b, int n_tok, const float* const* t,
                          float* const* y) = nullptr;

  const TypeKernels& of(TensorType t) const { return by_type[static_cast<uint32_t>(t)]; }
};

// The reference path; always available.
const KernelSet& scalar();
// The path picked for this CPU (once, cached). EDGELORA_KERNELS=scalar|avx2|avx2-vnni|neon|neon-dotprod
// forces a path when the CPU supports it.
const KernelSet& best();
// Every path this binary has and this CPU can run, scalar first (for tests and benchmarks).
std::vector<const KernelSet*> available();
// A path by name, or nullptr when not compiled in or not supported by this CPU.
const KernelSet* by_name(const char* name);

}  // namespace el::kernels
