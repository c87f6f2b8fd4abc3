/* edgelora engine C API: the only surface the Node addon (and tests) use.
 *
 * Objects:
 *   el_model    - a mapped GGUF base model + tokenizer (immutable, shareable).
 *   el_context  - KV cache pool (paged), thread pool, scratch, LoRA slot pool.
 *   el_sampler  - per-sequence sampling state (params + RNG).
 * Every entry returns an el_status code; on failure, `err` (if non-null) gets a message that
 * names the problem. No C++ exception crosses this boundary.
 *
 * Decoding is shaped like llama_decode: a batch of tokens, each with its sequence id,
 * position, LoRA slot (-1 = none), LoRA scale and whether its logits are wanted. Tokens of
 * different sequences and different adapters share one forward pass.
 */
#ifndef EDGELORA_H
#define EDGELORA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EL_OK = 0,
  EL_ERR_INVALID_ARGUMENT = 1,
  EL_ERR_BAD_FILE = 2,
  EL_ERR_UNSUPPORTED = 3,
  EL_ERR_OUT_OF_MEMORY = 4, /* includes "KV cache pool exhausted" */
  EL_ERR_INTERNAL = 5,
} el_status;

typedef struct {
  char message[1024];
} el_error;

typedef struct el_model el_model;
typedef struct el_context el_context;
typedef struct el_sampler el_sampler;

/* ---- kernels ---- */
/* Name of the kernel path in use ("scalar", "avx2", "avx2-vnni", "avx512-vnni", "neon", "neon-dotprod"). */
const char* el_kernel_path(void);
/* Force a kernel path by name for this process (tests/benchmarks); before any model load. */
el_status el_set_kernel_path(const char* name, el_error* err);

/* ---- model ---- */
typedef struct {
  const char* path;
  /* Optional: called on the loading thread as the weights are read into place, with the bytes
   * done so far and the total (done == total at the end). */
  void (*progress)(uint64_t done, uint64_t total, void* user);
  void* progress_user;
} el_model_params;

el_status el_model_load(const el_model_params* params, el_model** out, el_error* err);
/* The architectures (general.architecture) el_model_load accepts: "llama, qwen2, qwen3, phi3, gemma3". */
const char* el_supported_architectures(void);
void el_model_free(el_model* model);

typedef struct {
  char arch[32];            /* general.architecture, one of el_supported_architectures() */
  char name[128];           /* general.name */
  int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim;
  float rope_freq_base, rms_norm_eps;
  int32_t rope_neox;        /* 1 = NeoX-style rotation (every architecture but llama) */
  int32_t tied_output;      /* 1 = no output.weight (token embeddings reused) */
  int64_t n_params;
  int64_t weight_bytes;
  char weight_types[128];   /* e.g. "q4_0:169,f32:49" */
  char packed_types[64];    /* matrices repacked at load for the kernel path, e.g. "q4_0:169" ("" = none) */
  char tokenizer[16];       /* "llama" | "gpt2" */
  char tokenizer_pre[32];
  int32_t bos, eos, add_bos;
} el_model_info;
el_status el_model_get_info(const el_model* model, el_model_info* out, el_error* err);
/* Raw metadata string (e.g. tokenizer.chat_template); returns length or -1 if absent.
 * Copies up to buf_size-1 bytes plus NUL. */
int64_t el_model_meta_str(const el_model* model, const char* key, char* buf, size_t buf_size);

/* ---- tokenizer ---- */
/* Writes up to cap ids; *n_out gets the full count (call again with a bigger buffer if > cap). */
el_status el_tokenize(const el_model* model, const char* text, size_t len, int add_special,
                      int parse_special, int32_t* ids, int32_t cap, int32_t* n_out, el_error* err);
/* Bytes of one token; returns length (may exceed buf_size: then call again), or -1 for bad id. */
int32_t el_token_piece(const el_model* model, int32_t id, int render_special, char* buf, int32_t buf_size);
int el_token_is_eog(const el_model* model, int32_t id);

/* ---- context ---- */
typedef enum { EL_KV_F32 = 0, EL_KV_F16 = 1 } el_kv_type;

/* How the LoRA slot pool stores adapters. F16: A and B in fp16, float arithmetic (the exact
 * llama.cpp result for F16/F32 adapters). Q8: int8 with fp16 scales and int8 activations (like a
 * Q8_0 adapter): ~0.55x the memory and much faster with many different adapters per step, at
 * the cost of quantization error. Q4: the same with 4-bit weights (like a Q4_0 adapter): about
 * half the memory of Q8 and faster again, with Q4_0's larger error. */
typedef enum { EL_LORA_POOL_F16 = 0, EL_LORA_POOL_Q8 = 1, EL_LORA_POOL_Q4 = 2 } el_lora_pool_type;

typedef struct {
  int32_t n_threads;       /* worker threads for compute (>= 1) */
  int32_t n_ctx;           /* max tokens per sequence */
  int32_t n_kv_blocks;     /* KV pool size in blocks (0 = enough for n_seq_max full sequences) */
  int32_t kv_block_size;   /* tokens per KV block (0 = 32) */
  int32_t n_seq_max;       /* max concurrent sequences (ids 0..n_seq_max-1) */
  int32_t n_batch_max;     /* max tokens per decode call */
  el_kv_type kv_type;
  /* LoRA slot pool (issue: batched multi-LoRA). 0 slots = no LoRA support. */
  int32_t lora_slots;
  int32_t lora_max_rank;
  el_lora_pool_type lora_pool_type;
} el_context_params;

el_context_params el_context_default_params(void);
el_status el_context_new(el_model* model, const el_context_params* params, el_context** out, el_error* err);
void el_context_free(el_context* ctx);

typedef struct {
  int32_t n_tokens;
  const int32_t* token;
  const int32_t* pos;          /* must equal the sequence's current length (append-only) */
  const int32_t* seq_id;
  const int32_t* lora_slot;    /* NULL or -1 entries = no adapter */
  const float* lora_scale;     /* NULL = 1.0 */
  const int8_t* logits;        /* NULL = only the last token of the batch */
} el_batch;

/* One forward pass. On error, no sequence state changes (the batch is validated first,
 * KV blocks are reserved before any compute). */
el_status el_decode(el_context* ctx, const el_batch* batch, el_error* err);
/* Logits of the i-th token of the last batch that asked for them (order of the batch);
 * NULL if i is out of range. n_vocab floats, valid until the next el_decode. */
const float* el_get_logits(el_context* ctx, int32_t i);

/* Drop a sequence's KV (returns its blocks to the pool). */
el_status el_seq_clear(el_context* ctx, int32_t seq_id, el_error* err);
int32_t el_seq_length(const el_context* ctx, int32_t seq_id);

typedef struct {
  int32_t kv_blocks_total, kv_blocks_used, kv_block_size;
  int64_t kv_bytes;
  int32_t n_threads;
  /* How the compute threads waited since the context was created (summed over threads):
   * CPU time spent polling for work or for each other and wall time asleep (both 0 unless the
   * environment has EL_POOL_STATS=1 when the context is created), times gone to sleep. */
  int64_t pool_spin_ns, pool_sleep_ns, pool_sleeps;
} el_context_stats;
void el_context_get_stats(const el_context* ctx, el_context_stats* out);

/* ---- LoRA slot pool ----
 * A context pre-allocates `lora_slots` slots, each big enough for `lora_max_rank` on every
 * adaptable module (q, k, v, o, gate, up, down). Loading converts an adapter file (llama.cpp
 * LoRA GGUF, or a PEFT directory with adapter_config.json + adapter_model.safetensors) into a
 * free slot without heap allocation in the slot arena; it may run while el_decode runs on other
 * slots. A slot referenced by a live sequence (one that decoded with it and is not cleared)
 * cannot be unloaded or overwritten. The per-token scale in el_batch multiplies the adapter's
 * own factor, as llama.cpp does: y = W x + scale * factor * B (A x), where factor = alpha / rank
 * (alpha / sqrt(rank) for rsLoRA adapters; 1 for a GGUF adapter without adapter.lora.alpha). */
typedef struct {
  int32_t loaded;        /* 0 = free slot */
  int32_t rank;
  float alpha;
  float factor;          /* what B (A x) is multiplied by before the per-token scale */
  int64_t bytes;         /* bytes this adapter occupies in the slot */
  char modules[64];      /* e.g. "q,v,down" */
  int32_t n_sequences;   /* live sequences referencing the slot */
  char path[512];
} el_lora_info;

el_status el_lora_load(el_context* ctx, int32_t slot, const char* path, el_lora_info* out, el_error* err);
el_status el_lora_unload(el_context* ctx, int32_t slot, el_error* err);
el_status el_lora_slot_info(const el_context* ctx, int32_t slot, el_lora_info* out, el_error* err);

/* ---- features for adapter routing ----
 * Both entries run a list of prompts through this context, as sequences 0..n_seq_max-1, which
 * must be empty when called; they are empty again on return (also on error). The prompts are one
 * array of token ids (`tokens`) and a length per prompt (`n_tokens`, each 1..n_ctx); prompts
 * share forward passes of up to n_batch_max tokens. The router gives them a small context of its
 * own on the same model, so they never contend with the serving context's decodes. */

/* Mean over each prompt's tokens of the hidden state after its first `n_layers` layers: 0 = the
 * token embeddings, 1..n_layer-1 = the residual stream after that many layers (a cheap partial
 * pass: later layers are not computed), n_layer or more (or < 0) = after every layer and the
 * final norm. `out` gets n_prompts * n_embd floats, prompt after prompt. */
el_status el_embed(el_context* ctx, const int32_t* tokens, const int32_t* n_tokens, int32_t n_prompts,
                   int32_t n_layers, float* out, el_error* err);

/* Log-likelihood of given text: for a prompt of tokens t_0..t_{n-1} run with LoRA slot
 * lora_slot[p] (NULL or -1 = no adapter) at scale lora_scale[p] (NULL = 1), `out` gets
 * log P(t_{j+1} | t_0..t_j) for j = 0..n-2 (natural log, softmax of the raw logits), prompt
 * after prompt: sum over prompts of (n_tokens[p] - 1) floats. Prompts with different adapters
 * share each forward pass (the batched LoRA path), so k adapters' likelihoods of one text cost
 * one batched pass, not k. */
el_status el_token_logprobs(el_context* ctx, const int32_t* tokens, const int32_t* n_tokens, int32_t n_prompts,
                            const int32_t* lora_slot, const float* lora_scale, float* out, el_error* err);
/* Slot images (the daemon's warm tier): a loaded slot's adapter as the exact bytes the slot
 * holds, in the pool's layout, after a small header (pool type, rank, modules, alpha, factor, a
 * fingerprint of the model shapes and the pool layout).
 * el_lora_export writes the image of `slot` into buf (cap bytes) and sets *n_out to its size;
 * with buf NULL it only sets *n_out. A cap smaller than the image is refused (*n_out still set).
 * The slot must be loaded; it stays usable by decodes meanwhile.
 * el_lora_import copies an image into `slot` under the rules of el_lora_load (not while the slot
 * is referenced or loading; may run while el_decode uses other slots): no parsing, transposing
 * or quantizing, and the slot then computes bit for bit what the exported one did. An image
 * made for another model, pool type or layout, or truncated, is refused with a message saying
 * which, and the slot is left as it was. */
el_status el_lora_export(el_context* ctx, int32_t slot, void* buf, size_t cap, size_t* n_out, el_error* err);
el_status el_lora_import(el_context* ctx, int32_t slot, const void* buf, size_t n, el_lora_info* out, el_error* err);

/* ---- sampling ---- */
typedef struct {
  float temperature;  /* 0 = greedy */
  int32_t top_k;      /* 0 = off */
  float top_p;        /* 1 = off */
  float min_p;        /* 0 = off */
  uint64_t seed;
} el_sampler_params;

el_sampler_params el_sampler_default_params(void);
el_status el_sampler_new(const el_sampler_params* p, el_sampler** out, el_error* err);
void el_sampler_free(el_sampler* s);
/* Samples from raw logits; *logprob = natural-log probability of the token under the
 * model's distribution (log_softmax of raw logits, before temperature/filters). */
int32_t el_sampler_sample(el_sampler* s, const float* logits, int32_t n_vocab, float* logprob);

#ifdef __cplusplus
}
#endif
#endif /* EDGELORA_H */
