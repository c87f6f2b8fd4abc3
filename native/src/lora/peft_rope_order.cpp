// Row permutation of PEFT q/k lora_B from Hugging Face (rotate-half) to GGUF (interleaved) order.
#include "peft_rope_order.h"

#include <cstring>

namespace el::lora {

// convert_hf_to_gguf.py permutes q/k only for the models it writes as "llama" (Llama, Mistral,
// Mixtral, ...); every other architecture the engine serves keeps Hugging Face order.
bool peft_permutes_qk(const std::string& arch) { return arch == "llama"; }

int64_t hf_row_to_gguf(int64_t hf_row, int64_t n_rows, int n_head) {
  const int64_t d = n_rows / n_head;  // rows per head
  const int64_t half = d / 2;
  const int64_t head = hf_row / d, k = hf_row % d;
  const int64_t j = k / half, i = k % half;  // HF: half j, element i
  return head * d + 2 * i + j;
}

void permute_hf_rows_to_gguf(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, int n_head) {
  for (int64_t r = 0; r < n_rows; ++r)
    std::memcpy(dst + size_t(hf_row_to_gguf(r, n_rows, n_head)) * row_bytes, src + size_t(r) * row_bytes, row_bytes);
}

}  // namespace el::lora
