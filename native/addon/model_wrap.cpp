// JS class Model: a loaded GGUF model (info, tokenizer) and the factory of contexts.
#include <string>
#include <vector>

#include "handles.h"
#include "js_values.h"

namespace addon {
namespace {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod<&Model::info>("info"), InstanceMethod<&Model::tokenize>("tokenize"),
                        InstanceMethod<&Model::token_piece>("tokenPiece"), InstanceMethod<&Model::is_eog>("isEog"),
                        InstanceMethod<&Model::meta_string>("metaString"),
                        InstanceMethod<&Model::create_context>("createContext"),
                        InstanceMethod<&Model::dispose>("dispose")});
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel(path)");
    handle_ = *info[0].As<Napi::External<std::shared_ptr<ModelHandle>>>().Data();
  }

 private:
  ModelHandle& live(Napi::Env env) {
    if (!handle_) throw Napi::Error::New(env, "model is disposed");
    return *handle_;
  }

  Napi::Value info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    el_model_info mi{};
    el_error err{};
    const el_status s = el_model_get_info(live(env).model, &mi, &err);
    if (s != EL_OK) throw engine_error(env, s, err.message);
    Napi::Object o = Napi::Object::New(env);
    o.Set("arch", mi.arch);
    o.Set("name", mi.name);
    o.Set("nVocab", mi.n_vocab);
    o.Set("nCtxTrain", mi.n_ctx_train);
    o.Set("nEmbd", mi.n_embd);
    o.Set("nLayer", mi.n_layer);
    o.Set("nHead", mi.n_head);
    o.Set("nHeadKv", mi.n_head_kv);
    o.Set("nFf", mi.n_ff);
    o.Set("headDim", mi.head_dim);
    o.Set("ropeFreqBase", mi.rope_freq_base);
    o.Set("rmsNormEps", mi.rms_norm_eps);
    o.Set("ropeNeox", mi.rope_neox != 0);
    o.Set("tiedOutput", mi.tied_output != 0);
    o.Set("nParams", double(mi.n_params));
    o.Set("weightBytes", double(mi.weight_bytes));
    o.Set("weightTypes", mi.weight_types);  // "type:count,..."; the TS wrapper parses it
    o.Set("packedTypes", mi.packed_types);  // same form
    o.Set("tokenizer", mi.tokenizer);
    o.Set("tokenizerPre", mi.tokenizer_pre);
    o.Set("bos", mi.bos);
    o.Set("eos", mi.eos);
    o.Set("addBos", mi.add_bos != 0);
    o.Set("kernelPath", el_kernel_path());
    o.Set("supportedArchs", el_supported_architectures());
    return o;
  }

  // tokenize(text, addSpecial = true, parseSpecial = false) -> Int32Array
  Napi::Value tokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "tokenize(text): text must be a string");
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    const int add_special = info.Length() > 1 ? info[1].ToBoolean().Value() : 1;
    const int parse_special = info.Length() > 2 ? info[2].ToBoolean().Value() : 0;
    el_model* m = live(env).model;
    std::vector<int32_t> ids(text.size() + 4);
    int32_t n = 0;
    el_error err{};
    for (;;) {
      const el_status s = el_tokenize(m, text.data(), text.size(), add_special, parse_special, ids.data(),
                                      int32_t(ids.size()), &n, &err);
      if (s != EL_OK) throw engine_error(env, s, err.message);
      if (size_t(n) <= ids.size()) break;
      ids.resize(size_t(n));
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, size_t(n));
    std::copy(ids.begin(), ids.begin() + n, out.Data());
    return out;
  }

  // tokenPiece(id, renderSpecial = false) -> Buffer (raw bytes: a piece may be part of a UTF-8 character)
  Napi::Value token_piece(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "tokenPiece(id): id must be a number");
    const int32_t id = info[0].As<Napi::Number>().Int32Value();
    const int render = info.Length() > 1 ? info[1].ToBoolean().Value() : 0;
    el_model* m = live(env).model;
    char small[64];
    int32_t n = el_token_piece(m, id, render, small, int32_t(sizeof small));
    if (n < 0) throw Napi::RangeError::New(env, "tokenPiece: no token with id " + std::to_string(id));
    if (size_t(n) <= sizeof small) return Napi::Buffer<char>::Copy(env, small, size_t(n));
    std::vector<char> big(static_cast<size_t>(n));
    n = el_token_piece(m, id, render, big.data(), n);
    return Napi::Buffer<char>::Copy(env, big.data(), size_t(n));
  }

  Napi::Value is_eog(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "isEog(id): id must be a number");
    return Napi::Boolean::New(env, el_token_is_eog(live(env).model, info[0].As<Napi::Number>().Int32Value()) != 0);
  }

  // metaString(key) -> string | null
  Napi::Value meta_string(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "metaString(key): key must be a string");
    const std::string key = info[0].As<Napi::String>().Utf8Value();
    el_model* m = live(env).model;
    char probe[1];
    int64_t n = el_model_meta_str(m, key.c_str(), probe, sizeof probe);
    if (n < 0) return env.Null();
    std::vector<char> buf(size_t(n) + 1);
    n = el_model_meta_str(m, key.c_str(), buf.data(), buf.size());
    return Napi::String::New(env, buf.data(), size_t(n));
  }

  class ContextWorker : public PromiseWorker {
   public:
    ContextWorker(Napi::Env env, std::shared_ptr<ModelHandle> m, el_context_params p)
        : PromiseWorker(env), model_(std::move(m)), params_(p) {}

   protected:
    void Execute() override {
      el_error err{};
      el_context* c = nullptr;
      const el_status s = el_context_new(model_->model, &params_, &c, &err);
      if (s != EL_OK) return fail(s, err.message);
      handle_ = std::make_shared<ContextHandle>();
      handle_->ctx = c;
      handle_->model = model_;
      handle_->params = params_;
      el_context_get_stats(c, &handle_->last_stats);
    }
    void OnOK() override { deferred_.Resolve(new_context(Env(), handle_)); }

   private:
    std::shared_ptr<ModelHandle> model_;
    el_context_params params_;
    std::shared_ptr<ContextHandle> handle_;
  };

  // createContext({threads, nCtx, nSeqMax, nBatchMax, kvType, kvBlocks, kvBlockSize, loraSlots, loraMaxRank,
  //                loraPoolType})
  Napi::Value create_context(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    el_context_params p = el_context_default_params();
    if (info.Length() > 0 && !absent(info[0])) {
      if (!info[0].IsObject()) throw Napi::TypeError::New(env, "createContext(params): params must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      p.n_threads = int_or(env, o, "threads", p.n_threads);
      p.n_ctx = int_or(env, o, "nCtx", p.n_ctx);
      p.n_seq_max = int_or(env, o, "nSeqMax", p.n_seq_max);
      p.n_batch_max = int_or(env, o, "nBatchMax", p.n_batch_max);
      p.n_kv_blocks = int_or(env, o, "kvBlocks", p.n_kv_blocks);
      p.kv_block_size = int_or(env, o, "kvBlockSize", p.kv_block_size);
      p.lora_slots = int_or(env, o, "loraSlots", p.lora_slots);
      p.lora_max_rank = int_or(env, o, "loraMaxRank", p.lora_max_rank);
      Napi::Value kv = o.Get("kvType");
      if (!absent(kv)) {
        const std::string t = kv.IsString() ? kv.As<Napi::String>().Utf8Value() : "";
        if (t == "f32") p.kv_type = EL_KV_F32;
        else if (t == "f16") p.kv_type = EL_KV_F16;
        else throw Napi::TypeError::New(env, "kvType must be \"f32\" or \"f16\"");
      }
      Napi::Value pool = o.Get("loraPoolType");
      if (!absent(pool)) {
        const std::string t = pool.IsString() ? pool.As<Napi::String>().Utf8Value() : "";
        if (t == "f16") p.lora_pool_type = EL_LORA_POOL_F16;
        else if (t == "q8") p.lora_pool_type = EL_LORA_POOL_Q8;
        else if (t == "q4") p.lora_pool_type = EL_LORA_POOL_Q4;
        else throw Napi::TypeError::New(env, "loraPoolType must be \"f16\", \"q8\" or \"q4\"");
      }
    }
    auto* w = new ContextWorker(env, handle_, p);
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
  }

  // Drops this object's hold on the model; contexts still alive keep it until they go.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    handle_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ModelHandle> handle_;
};

}  // namespace

Napi::Function init_model(Napi::Env env) { return Model::define(env); }

Napi::Object new_model(Napi::Env env, std::shared_ptr<ModelHandle> h) {
  auto* data = env.GetInstanceData<AddonData>();
  return data->model_ctor.New({Napi::External<std::shared_ptr<ModelHandle>>::New(env, &h)});
}

}  // namespace addon
