// Llama-family model (llama, qwen2, qwen3, phi3, gemma3): hyperparameters and weights from a GGUF file
// (model_loader.cpp), and a Context that runs the forward pass over a mixed batch of
// sequences with a paged KV cache (model_forward.cpp).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "big_buffer.h"
#include "gguf.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kv_cache.h"
#include "lora/lora_dispatch.h"
#include "threadpool.h"
#include "tokenizer/tokenizer.h"

namespace el {

enum class Arch { Llama, Qwen2, Qwen3, Phi3, Gemma3 };
// The architectures Model::load accepts, for messages: "llama, qwen2, qwen3, phi3, gemma3".
const char* supported_architectures();

// The gated FFN's activation: act(gate) * up.
enum class FfnAct { SiLU, GeluTanh };

struct HParams {
  Arch arch = Arch::Llama;
  std::string arch_name;   // general.architecture
  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_ff = 0;
  int head_dim = 0;        // attention.key_length, else n_embd / n_head
  int n_rot = 0;           // rope.dimension_count, else head_dim
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  bool rope_neox = false;  // rotate (i, i + n_rot/2) pairs instead of (2i, 2i+1)
  bool qk_norm = false;     // qwen3, gemma3: per-head RMS norm of q and k before RoPE
  bool post_norms = false;  // gemma3: RMS norm of each branch's output before the residual add
  FfnAct ffn_act = FfnAct::SiLU;
  float embd_scale = 1.0f;  // gemma3: sqrt(n_embd)
  float attn_scale = 0;     // on q.k (1 / sqrt(head_dim) unless the architecture says otherwise)
  float logit_softcap = 0;  // final_logit_softcapping (0: none)
  // Sliding-window attention (gemma3): layers with swa_layer[il] attend to the last n_swa
  // positions only, with their own RoPE base and scale.
  int n_swa = 0;
  std::vector<uint8_t> swa_layer;  // (n_layer), empty when no layer slides
  float rope_freq_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;

  bool is_swa(int il) const { return !swa_layer.empty() && swa_layer[size_t(il)] != 0; }

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Every linear projection of the model. LoRA adapters attach to these, so the forward pass
// routes all of them through one function (Context::project).
enum class Module : int { Q, K, V, O, Gate, Up, Down, Output };
constexpr int kLayerModules = 7;  // Q..Down exist in every layer; Output once
const char* module_tensor_name(Module m);  // "attn_q", ..., "output"

struct Linear {
  const GGUFTensor* tensor = nullptr;
  kernels::WeightView w{};  // its copy in Model::weights() (Packed8, kernels/packed.h, or GGUF rows)
  std::vector<float> bias;  // n_out values, or empty
};

struct Layer {
  std::vector<float> attn_norm;       // (n_embd)
  std::vector<float> ffn_norm;        // (n_embd)
  std::vector<float> attn_q_norm;     // (head_dim) when qk_norm
  std::vector<float> attn_k_norm;     // (head_dim) when qk_norm
  std::vector<float> attn_post_norm;  // (n_embd) when post_norms
  std::vector<float> ffn_post_norm;   // (n_embd) when post_norms
  // Indexed by Module. phi3's fused attn_qkv and ffn_up (gate rows, then up rows) are held as
  // views of their rows: Q, K, V and Gate, Up read their part of the one tensor.
  Linear proj[kLayerModules];
};

class Model {
 public:
  // Maps the file, reads hparams, tokenizer and weights, and checks every shape; throws
  // el::Error naming the key or tensor (with expected and actual shapes) on a mismatch.
  // Every projection is copied into one buffer of huge pages (place_weights): repacked
  // (kernels/packed.h) if `pack_for` has packed kernels for its type, unless EDGELORA_PACK=0,
  // else as its GGUF rows; contexts on other paths still run packed weights, more slowly.
  // The weights are placed by every core (EDGELORA_LOAD_THREADS sets how many); `progress`
  // (optional) is called from the loading thread only, as they are copied into place, with the
  // bytes done and the total (the bulk of a load: the file's pages are read then).
  using LoadProgress = std::function<void(uint64_t done, uint64_t total)>;
  static std::unique_ptr<Model> load(const std::string& path, const kernels::KernelSet& pack_for = kernels::best(),
                                     const LoadProgress& progress = {});

  const HParams& hparams() const { return hp_; }
  const GGUFFile& file() const { return *file_; }
  // The buffer every projection's weight is read from (place_weights), and its size.
  const uint8_t* weights() const { return weights_.get(); }
  size_t weights_bytes() const { return weights_bytes_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

  const GGUFTensor& token_embd() const { return *token_embd_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }  // (n_rot/2) or empty
  bool tied_output() const { return tied_output_; }
  const Layer& layer(int i) const { return layers_[i]; }
  // The projection of a module; `layer` is ignored for Module::Output.
  const Linear& linear(int layer, Module m) const {
    return m == Module::Output ? output_ : layers_[layer].proj[static_cast<int>(m)];
  }

 private:
  Model() = default;
  void read_hparams();
  void read_weights();
  void place_weights(const kernels::KernelSet& ks, const LoadProgress& progress);

  std::unique_ptr<GGUFFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  HParams hp_;
  const GGUFTensor* token_embd_ = nullptr;
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_;
  bool tied_output_ = false;
  Linear output_;
  std::vector<Layer> layers_;
  BigBuffer weights_;  // every Linear's weight, one after another (place_weights)
  size_t weights_bytes_ = 0;
};

struct ContextParams {
  int n_threads = 1;
  int n_ctx = 2048;
  int n_kv_blocks = 0;     // 0 = enough for n_seq_max full sequences
  int kv_block_size = 32;
  int n_seq_max = 1;
  int n_batch_max = 512;
  KVType kv_type = KVType::F16;
  int lora_slots = 0;
  int lora_max_rank = 0;
  lora::LoraPoolType lora_pool_type = lora::LoraPoolType::F16;
};

// One decode call's tokens (el_batch, already non-null where required).
struct BatchView {
  int n_tokens = 0;
  const int32_t* token = nullptr;
  const int32_t* pos = nullptr;
  const int32_t* seq_id = nullptr;
  const int32_t* lora_slot = nullptr;  // may be null
  const float* lora_scale = nullptr;   // may be null
  const int8_t* logits = nullptr;      // may be null: last token only
};

class Context {
 public:
  // Allocates the KV pool and every scratch buffer for n_batch_max tokens; throws el::Error.
  Context(const Model& model, const ContextParams& params, const kernels::KernelSet& ks);

  // One forward pass. Validates the whole batch and reserves KV blocks before touching any
  // state, so a failure (el::Error) leaves every sequence as it was.
  void decode(const BatchView& batch);
  // The batch through the token embeddings and its first `n_layers` layers only (every layer and
  // the final norm when n_layers >= n_layer): the hidden rows (n_tokens x n_embd), valid until
  // the next call. No logits. The KV of the layers not run stays unwritten, so the sequences
  // are fit only for seq_clear afterwards (el_embed clears them). model_hidden.cpp.
  const float* hidden(const BatchView& batch, int n_layers);
  // Logits of the i-th output: the i-th token, in batch order, among the tokens of the last
  // decode that asked for logits (nullptr when out of range).
  const float* logits(int i) const;
  int n_outputs() const { return n_outputs_; }

  void seq_clear(int seq);
  int seq_length(int seq) const;

  const ContextParams& params() const { return p_; }
  const KVCache& kv() const { return kv_; }
  ThreadPool::WaitStats pool_wait_stats() const { return pool_.wait_stats(); }
  const kernels::KernelSet& kernels() const { return ks_; }
  // The LoRA slot pool; null when the context was created with lora_slots = 0.
  lora::LoraPool* lora_pool() const { return lora_ ? &lora_->pool() : nullptr; }

 private:
  // Converted copy of one projection input, reused by every weight of the same
  // activation type until the input changes.
  struct Input {
    const float* x;
    int n_rows;
    int64_t n_in;
    uint64_t epoch;
  };
  Input input(const float* x, int n_rows, int64_t n_in) { return Input{x, n_rows, n_in, ++epoch_}; }

  void validate_and_reserve(const BatchView& b);
  void embed(const BatchView& b);
  void rope_tables(const BatchView& b);
  void layer_forward(int il, const BatchView& b);
  void head_norm(float* rows, const std::vector<float>& w, int n_heads, int n_tok);
  void add_branch(const std::vector<float>& post_norm, int n);
  void apply_rope(float* rows, int n_heads, int n_tok, const float* table);
  void store_kv(int il, const BatchView& b);
  void attention(int il, const BatchView& b);
  void attend_one(int il, int seq, int pos, int h, const float* q, float* out, float* scores) const;
  void output_logits(const BatchView& b);
  // out[r * n_out + o] = W_m . x[r] (+ bias) for each projection of `ps` (all reading `in`; at
  // most kMaxProjections), plus the per-row adapter deltas (batched LoRA, lora/lora_dispatch.h),
  // in one dispatch over the threads. Fuse::SwiGLU / GeGLU take {Gate, Up} and leave silu(gate) * up
  // or gelu_tanh(gate) * up in the gate output.
  struct Projection {
    Module m;
    float* out;
  };
  static constexpr int kMaxProjections = 3;
  enum class Fuse { None, SwiGLU, GeGLU };
  void project(int il, std::initializer_list<Projection> ps, const Input& in, Fuse fuse = Fuse::None);
  int threads_for(double work, double per_thread) const;

  const Model& model_;
  const HParams& hp_;
  ContextParams p_;
  const kernels::KernelSet& ks_;
  KVCache kv_;
  ThreadPool pool_;

  // Scratch, sized for n_batch_max tokens at construction (rows of the given width).
  std::vector<float> x_;       // residual stream (n_embd)
  std::vector<float> xn_;      // normed input of a block (n_embd)
  std::vector<float> q_;       // queries (q_dim)
  std::vector<float> k_;       // new keys (kv_dim)
  std::vector<float> v_;       // new values (kv_dim)
  std::vector<float> attn_;    // attention output (q_dim)
  std::vector<float> tmp_;     // projection output before the residual add (n_embd)
  std::vector<float> gate_;    // FFN gate, then silu(gate) * up (n_ff)
  std::vector<float> up_;      // FFN up (n_ff)
  std::vector<float> rope_;    // per token: cos, sin pairs (n_rot)
  std::vector<float> rope_swa_;  // the same for sliding-window layers (their own base), or empty
  std::vector<float> scores_;  // per thread: attention weights (score_stride_)
  size_t score_stride_ = 0;
  std::vector<int32_t> slot_;  // per token: LoRA slot (-1 = none)
  std::vector<float> scale_;   // per token: LoRA scale
  std::vector<int32_t> out_rows_;  // batch indices of the tokens that want logits
  std::vector<int32_t> run_len_;    // per sequence: length while validating a batch,
  std::vector<uint64_t> run_stamp_; // valid where the stamp is this validation's
  uint64_t stamp_ = 0;
  std::vector<SeqGrowth> growth_;  // sequences the batch extends
  std::vector<float> logits_;      // (n_outputs, n_vocab); grows past n_seq_max rows only on demand
  int n_outputs_ = 0;

  struct CachedActivations {
    uint64_t epoch = 0;
    kernels::PreparedActivations act;
  };
  CachedActivations prepared_[kernels::kMaxTypeId];
  uint64_t epoch_ = 0;

  // Batched LoRA: the slot pool, this batch's plan and the shrink results (null when the
  // context has no LoRA slots), and the slot each sequence references (-1 = none).
  std::unique_ptr<lora::BatchLora> lora_;
  std::vector<int32_t> seq_slot_;
};

}  // namespace el
