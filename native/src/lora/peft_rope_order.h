// Hugging Face keeps the q_proj / k_proj output rows of a llama model in rotate-half RoPE order
// (per head: the first halves of all rotation pairs, then the second halves); a llama GGUF holds
// them interleaved (pair members side by side), because convert_hf_to_gguf.py permutes those
// weights. A PEFT adapter is in Hugging Face layout, so lora_B of q_proj / k_proj (whose rows are
// the weight's output rows) needs the same permutation, as convert_lora_to_gguf.py applies. Other
// architectures (qwen2: NeoX RoPE) are converted without it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace el::lora {

// Whether PEFT q/k lora_B rows are permuted for a base model of this general.architecture.
bool peft_permutes_qk(const std::string& arch);

// The GGUF row that Hugging Face row `hf_row` becomes, in a matrix of `n_rows` rows split into
// `n_head` heads (n_rows a multiple of 2 * n_head): within a head of d rows, HF row j*d/2 + i
// (j = 0, 1; i < d/2) goes to row 2i + j.
int64_t hf_row_to_gguf(int64_t hf_row, int64_t n_rows, int n_head);

// dst row hf_row_to_gguf(r) = src row r, for each of n_rows rows of row_bytes bytes.
void permute_hf_rows_to_gguf(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, int n_head);

}  // namespace el::lora
