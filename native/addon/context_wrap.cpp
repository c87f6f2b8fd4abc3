// JS class Context: KV cache + decode. decode() runs el_decode and the sampling of the
// requested positions in one async job, so a step costs one trip off the JS thread.
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "handles.h"
#include "js_values.h"

namespace addon {
namespace {

// One decode call: the batch copied out of JS, samplers (null = return raw logits) and results.
class DecodeWorker : public PromiseWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<ContextHandle> ctx) : PromiseWorker(env), ctx_(std::move(ctx)) {}

  std::vector<int32_t> token, pos, seq, lora_slot;
  std::vector<float> lora_scale;
  std::vector<int8_t> logits_flags;  // empty = only the last token
  std::vector<std::shared_ptr<SamplerHandle>> samplers;

 protected:
  void Execute() override {
    el_batch b{};
    b.n_tokens = int32_t(token.size());
    b.token = token.data();
    b.pos = pos.data();
    b.seq_id = seq.data();
    b.lora_slot = lora_slot.empty() ? nullptr : lora_slot.data();
    b.lora_scale = lora_scale.empty() ? nullptr : lora_scale.data();
    b.logits = logits_flags.empty() ? nullptr : logits_flags.data();
    const auto t0 = std::chrono::steady_clock::now();
    el_error err{};
    const el_status s = el_decode(ctx_->ctx, &b, &err);
    if (s != EL_OK) return fail(s, err.message);
    const int32_t n_vocab = ctx_->model->n_vocab;
    out_tokens_.assign(samplers.size(), -1);
    out_logprobs_.assign(samplers.size(), NAN);
    for (size_t i = 0; i < samplers.size(); ++i) {
      const float* row = el_get_logits(ctx_->ctx, int32_t(i));
      if (!row) return fail(EL_ERR_INTERNAL, "decode: the engine returned fewer logit rows than requested");
      if (samplers[i]) {
        out_tokens_[i] = el_sampler_sample(samplers[i]->sampler, row, n_vocab, &out_logprobs_[i]);
      } else {
        out_logits_.insert(out_logits_.end(), row, row + n_vocab);
      }
    }
    ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  void OnOK() override {
    release();
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    Napi::Int32Array tokens = Napi::Int32Array::New(env, out_tokens_.size());
    std::copy(out_tokens_.begin(), out_tokens_.end(), tokens.Data());
    Napi::Float32Array logprobs = Napi::Float32Array::New(env, out_logprobs_.size());
    std::copy(out_logprobs_.begin(), out_logprobs_.end(), logprobs.Data());
    Napi::Float32Array logits = Napi::Float32Array::New(env, out_logits_.size());
    std::copy(out_logits_.begin(), out_logits_.end(), logits.Data());
    r.Set("tokens", tokens);
    r.Set("logprobs", logprobs);
    r.Set("logits", logits);
    r.Set("ms", ms_);
    deferred_.Resolve(r);
  }

  void OnError(const Napi::Error& e) override {
    release();
    PromiseWorker::OnError(e);
  }

 private:
  // Back on the JS thread: the context and samplers may be used again.
  void release() {
    ctx_->busy = false;
    el_context_get_stats(ctx_->ctx, &ctx_->last_stats);
    for (auto& s : samplers)
      if (s) s->busy = false;
  }

  std::shared_ptr<ContextHandle> ctx_;
  std::vector<int32_t> out_tokens_;
  std::vector<float> out_logprobs_;
  std::vector<float> out_logits_;
  double ms_ = 0;
};

Napi::Object lora_info_object(Napi::Env env, int32_t slot, const el_lora_info& li) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("slot", slot);
  o.Set("loaded", li.loaded != 0);
  o.Set("rank", li.rank);
  o.Set("alpha", li.alpha);
  o.Set("factor", li.factor);
  o.Set("bytes", double(li.bytes));
  o.Set("modules", li.modules);  // "q,v,down"; the TS wrapper splits it
  o.Set("nSequences", li.n_sequences);
  o.Set("path", li.path);
  return o;
}

// Loads an adapter file into a slot off the JS thread; the engine allows it during a decode.
class LoraLoadWorker : public PromiseWorker {
 public:
  LoraLoadWorker(Napi::Env env, std::shared_ptr<ContextHandle> ctx, int32_t slot, std::string path)
      : PromiseWorker(env), ctx_(std::move(ctx)), slot_(slot), path_(std::move(path)) {}

 protected:
  void Execute() override {
    el_error err{};
    const el_status s = el_lora_load(ctx_->ctx, slot_, path_.c_str(), &info_, &err);
    if (s != EL_OK) fail(s, err.message);
  }
  void OnOK() override {
    ctx_->lora_loading = false;
    deferred_.Resolve(lora_info_object(Env(), slot_, info_));
  }
  void OnError(const Napi::Error& e) override {
    ctx_->lora_loading = false;
    PromiseWorker::OnError(e);
  }

 private:
  std::shared_ptr<ContextHandle> ctx_;
  int32_t slot_;
  std::string path_;
  el_lora_info info_{};
};

// el_embed / el_token_logprobs off the JS thread: prompts in, one Float32Array out.
class FeatureWorker : public PromiseWorker {
 public:
  enum class Kind { Embed, Logprobs };
  FeatureWorker(Napi::Env env, std::shared_ptr<ContextHandle> ctx, Kind kind) : PromiseWorker(env), ctx_(std::move(ctx)), kind_(kind) {}

  std::vector<int32_t> tokens, n_tokens, lora_slot;
  std::vector<float> lora_scale;
  int32_t n_layers = -1;

 protected:
  void Execute() override {
    el_error err{};
    el_status s;
    if (kind_ == Kind::Embed) {
      out_.assign(n_tokens.size() * size_t(ctx_->model->n_embd), 0.0f);
      s = el_embed(ctx_->ctx, tokens.data(), n_tokens.data(), int32_t(n_tokens.size()), n_layers, out_.data(), &err);
    } else {
      size_t n_out = 0;
      for (int32_t n : n_tokens) n_out += n > 0 ? size_t(n - 1) : 0;
      out_.assign(n_out, 0.0f);
      s = el_token_logprobs(ctx_->ctx, tokens.data(), n_tokens.data(), int32_t(n_tokens.size()),
                            lora_slot.empty() ? nullptr : lora_slot.data(), lora_scale.empty() ? nullptr : lora_scale.data(),
                            out_.data(), &err);
    }
    if (s != EL_OK) fail(s, err.message);
  }
  void OnOK() override {
    ctx_->busy = false;
    Napi::Float32Array a = Napi::Float32Array::New(Env(), out_.size());
    std::copy(out_.begin(), out_.end(), a.Data());
    deferred_.Resolve(a);
  }
  void OnError(const Napi::Error& e) override {
    ctx_->busy = false;
    PromiseWorker::OnError(e);
  }

 private:
  std::shared_ptr<ContextHandle> ctx_;
  Kind kind_;
  std::vector<float> out_;
};

// Copies a slot image into a slot off the JS thread (a memcpy per region, no conversion). The
// image Buffer is held by a reference until the worker settles, so its bytes stay put.
class LoraImportWorker : public PromiseWorker {
 public:
  LoraImportWorker(Napi::Env env, std::shared_ptr<ContextHandle> ctx, int32_t slot, Napi::Buffer<uint8_t> image)
      : PromiseWorker(env), ctx_(std::move(ctx)), slot_(slot), data_(image.Data()), size_(image.Length()),
        image_(Napi::Persistent(image)) {}

 protected:
  void Execute() override {
    el_error err{};
    const el_status s = el_lora_import(ctx_->ctx, slot_, data_, size_, &info_, &err);
    if (s != EL_OK) fail(s, err.message);
  }
  void OnOK() override {
    done();
    deferred_.Resolve(lora_info_object(Env(), slot_, info_));
  }
  void OnError(const Napi::Error& e) override {
    done();
    PromiseWorker::OnError(e);
  }

 private:
  void done() {
    ctx_->lora_loading = false;
    image_.Reset();
  }
  std::shared_ptr<ContextHandle> ctx_;
  int32_t slot_;
  const uint8_t* data_;
  size_t size_;
  Napi::Reference<Napi::Buffer<uint8_t>> image_;
  el_lora_info info_{};
};

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {InstanceMethod<&Context::decode>("decode"), InstanceMethod<&Context::seq_clear>("seqClear"),
                        InstanceMethod<&Context::seq_length>("seqLength"), InstanceMethod<&Context::stats>("stats"),
                        InstanceMethod<&Context::lora_load>("loraLoad"),
                        InstanceMethod<&Context::lora_unload>("loraUnload"),
                        InstanceMethod<&Context::lora_slot_info>("loraSlotInfo"),
                        InstanceMethod<&Context::lora_export>("loraExport"),
                        InstanceMethod<&Context::lora_import>("loraImport"),
                        InstanceMethod<&Context::embed>("embed"),
                        InstanceMethod<&Context::token_logprobs>("tokenLogprobs"),
                        InstanceMethod<&Context::dispose>("dispose")});
  }

  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "Context cannot be constructed directly: use model.createContext()");
    handle_ = *info[0].As<Napi::External<std::shared_ptr<ContextHandle>>>().Data();
  }

 private:
  ContextHandle& live(Napi::Env env) {
    if (!handle_) throw Napi::Error::New(env, "context is disposed");
    return *handle_;
  }
  ContextHandle& idle(Napi::Env env, const char* what) {
    ContextHandle& h = live(env);
    if (h.busy) throw Napi::Error::New(env, std::string(what) + ": a decode is in flight on this context");
    return h;
  }

  // decode({tokens, pos, seq, loraSlot?, loraScale?, logits?}, samplers) ->
  //   Promise<{tokens: Int32Array, logprobs: Float32Array, logits: Float32Array, ms}>
  // One sampler (or null for raw logits) per token whose logits are wanted, in batch order.
  Napi::Value decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = idle(env, "decode");
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsArray())
      throw Napi::TypeError::New(env, "decode(batch, samplers): batch must be an object and samplers an array");
    Napi::Object b = info[0].As<Napi::Object>();
    auto* w = new DecodeWorker(env, handle_);
    try {
      w->token = numbers<int32_t>(env, b.Get("tokens"), "tokens");
      w->pos = numbers<int32_t>(env, b.Get("pos"), "pos");
      w->seq = numbers<int32_t>(env, b.Get("seq"), "seq");
      const size_t n = w->token.size();
      if (n == 0) throw Napi::RangeError::New(env, "decode: the batch has no tokens");
      if (w->pos.size() != n || w->seq.size() != n)
        throw Napi::RangeError::New(env, "decode: tokens, pos and seq must have the same length");
      if (!absent(b.Get("loraSlot"))) w->lora_slot = numbers<int32_t>(env, b.Get("loraSlot"), "loraSlot");
      if (!absent(b.Get("loraScale"))) w->lora_scale = numbers<float>(env, b.Get("loraScale"), "loraScale");
      if (!absent(b.Get("logits"))) w->logits_flags = numbers<int8_t>(env, b.Get("logits"), "logits");
      if ((!w->lora_slot.empty() && w->lora_slot.size() != n) || (!w->lora_scale.empty() && w->lora_scale.size() != n) ||
          (!w->logits_flags.empty() && w->logits_flags.size() != n))
        throw Napi::RangeError::New(env, "decode: loraSlot, loraScale and logits must have one entry per token");
      size_t wanted = 1;
      if (!w->logits_flags.empty()) {
        wanted = 0;
        for (int8_t f : w->logits_flags) wanted += f != 0;
      }
      Napi::Array s = info[1].As<Napi::Array>();
      if (s.Length() != wanted)
        throw Napi::RangeError::New(env, "decode: " + std::to_string(wanted) + " token(s) want logits but " +
                                             std::to_string(s.Length()) + " sampler entries were given");
      for (uint32_t i = 0; i < s.Length(); ++i) {
        Napi::Value v = s.Get(i);
        if (absent(v)) {
          w->samplers.push_back(nullptr);
          continue;
        }
        auto sh = sampler_of(env, v);
        if (!sh) throw Napi::TypeError::New(env, "decode: samplers[" + std::to_string(i) + "] must be a Sampler or null");
        if (sh->busy) throw Napi::Error::New(env, "decode: samplers[" + std::to_string(i) + "] is in use by another decode");
        w->samplers.push_back(std::move(sh));
      }
    } catch (...) {
      delete w;
      throw;
    }
    h.busy = true;
    for (auto& sh : w->samplers)
      if (sh) sh->busy = true;
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value seq_clear(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = idle(env, "seqClear");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "seqClear(seq): seq must be a number");
    el_error err{};
    const el_status s = el_seq_clear(h.ctx, info[0].As<Napi::Number>().Int32Value(), &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    el_context_get_stats(h.ctx, &h.last_stats);
    return env.Undefined();
  }

  Napi::Value seq_length(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = idle(env, "seqLength");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "seqLength(seq): seq must be a number");
    return Napi::Number::New(env, el_seq_length(h.ctx, info[0].As<Napi::Number>().Int32Value()));
  }

  // While a decode runs, reports the numbers as of the end of the previous call (no data race).
  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = live(env);
    if (!h.busy) el_context_get_stats(h.ctx, &h.last_stats);
    const el_context_stats& st = h.last_stats;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kvBlocksTotal", st.kv_blocks_total);
    o.Set("kvBlocksUsed", st.kv_blocks_used);
    o.Set("kvBlockSize", st.kv_block_size);
    o.Set("kvBytes", double(st.kv_bytes));
    o.Set("threads", st.n_threads);
    o.Set("poolSpinNs", double(st.pool_spin_ns));
    o.Set("poolSleepNs", double(st.pool_sleep_ns));
    o.Set("poolSleeps", double(st.pool_sleeps));
    o.Set("busy", h.busy);
    o.Set("nCtx", h.params.n_ctx);
    o.Set("nSeqMax", h.params.n_seq_max);
    o.Set("nBatchMax", h.params.n_batch_max);
    return o;
  }

  // loraLoad(slot, path) -> Promise<slot info>; one load at a time per context.
  Napi::Value lora_load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = live(env);
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString())
      throw Napi::TypeError::New(env, "loraLoad(slot, path): slot must be a number and path a string");
    if (h.lora_loading) throw Napi::Error::New(env, "loraLoad: another adapter load is in flight on this context");
    auto* w = new LoraLoadWorker(env, handle_, info[0].As<Napi::Number>().Int32Value(),
                                 info[1].As<Napi::String>().Utf8Value());
    h.lora_loading = true;
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value lora_unload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = idle(env, "loraUnload");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "loraUnload(slot): slot must be a number");
    el_error err{};
    const el_status s = el_lora_unload(h.ctx, info[0].As<Napi::Number>().Int32Value(), &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    return env.Undefined();
  }

  Napi::Value lora_slot_info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = idle(env, "loraSlotInfo");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "loraSlotInfo(slot): slot must be a number");
    const int32_t slot = info[0].As<Napi::Number>().Int32Value();
    el_lora_info li{};
    el_error err{};
    const el_status s = el_lora_slot_info(h.ctx, slot, &li, &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    return lora_info_object(env, slot, li);
  }

  // loraExport(slot) -> Buffer: the slot's image (edgelora.h), copied on the JS thread (a memcpy
  // of the adapter's bytes). Allowed while a decode runs: the engine holds the slot meanwhile.
  Napi::Value lora_export(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = live(env);
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "loraExport(slot): slot must be a number");
    const int32_t slot = info[0].As<Napi::Number>().Int32Value();
    size_t n = 0;
    el_error err{};
    el_status s = el_lora_export(h.ctx, slot, nullptr, 0, &n, &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, n);
    s = el_lora_export(h.ctx, slot, buf.Data(), buf.Length(), &n, &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    return buf;
  }

  // loraImport(slot, image: Buffer) -> Promise<slot info>; shares loraLoad's one-at-a-time rule.
  Napi::Value lora_import(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ContextHandle& h = live(env);
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer())
      throw Napi::TypeError::New(env, "loraImport(slot, image): slot must be a number and image a Buffer");
    if (h.lora_loading) throw Napi::Error::New(env, "loraImport: another adapter load is in flight on this context");
    auto* w = new LoraImportWorker(env, handle_, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Buffer<uint8_t>>());
    h.lora_loading = true;
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  // embed(tokens, nTokens, nLayers) -> Promise<Float32Array> (nPrompts x nEmbd): el_embed.
  Napi::Value embed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[2].IsNumber())
      throw Napi::TypeError::New(env, "embed(tokens, nTokens, nLayers): nLayers must be a number");
    auto* w = feature_worker(info, FeatureWorker::Kind::Embed, "embed");
    w->n_layers = info[2].As<Napi::Number>().Int32Value();
    return queue(w);
  }

  // tokenLogprobs(tokens, nTokens, loraSlot?, loraScale?) -> Promise<Float32Array>: el_token_logprobs,
  // with one slot and scale per prompt.
  Napi::Value token_logprobs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* w = feature_worker(info, FeatureWorker::Kind::Logprobs, "tokenLogprobs");
    try {
      if (info.Length() > 2 && !absent(info[2])) w->lora_slot = numbers<int32_t>(env, info[2], "loraSlot");
      if (info.Length() > 3 && !absent(info[3])) w->lora_scale = numbers<float>(env, info[3], "loraScale");
      if ((!w->lora_slot.empty() && w->lora_slot.size() != w->n_tokens.size()) ||
          (!w->lora_scale.empty() && w->lora_scale.size() != w->n_tokens.size()))
        throw Napi::RangeError::New(env, "tokenLogprobs: loraSlot and loraScale must have one entry per prompt");
    } catch (...) {
      delete w;
      throw;
    }
    return queue(w);
  }

  FeatureWorker* feature_worker(const Napi::CallbackInfo& info, FeatureWorker::Kind kind, const char* what) {
    Napi::Env env = info.Env();
    idle(env, what);
    if (info.Length() < 2) throw Napi::TypeError::New(env, std::string(what) + ": tokens and nTokens are required");
    auto* w = new FeatureWorker(env, handle_, kind);
    try {
      w->tokens = numbers<int32_t>(env, info[0], "tokens");
      w->n_tokens = numbers<int32_t>(env, info[1], "nTokens");
      int64_t total = 0;
      for (int32_t n : w->n_tokens) {
        if (n < 1) throw Napi::RangeError::New(env, std::string(what) + ": every prompt needs at least one token");
        total += n;
      }
      if (total != int64_t(w->tokens.size()))
        throw Napi::RangeError::New(env, std::string(what) + ": nTokens must add up to the number of tokens");
    } catch (...) {
      delete w;
      throw;
    }
    return w;
  }

  Napi::Value queue(FeatureWorker* w) {
    handle_->busy = true;
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  // Safe at any time: an in-flight decode holds its own reference and frees the context after it.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    handle_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ContextHandle> handle_;
};

}  // namespace

Napi::Function init_context(Napi::Env env) { return Context::define(env); }

Napi::Object new_context(Napi::Env env, std::shared_ptr<ContextHandle> h) {
  auto* data = env.GetInstanceData<AddonData>();
  return data->context_ctor.New({Napi::External<std::shared_ptr<ContextHandle>>::New(env, &h)});
}

}  // namespace addon
