// Shared pieces of the Node addon: reference-counted owners of the C handles, the per-env
// constructors, and turning an el_status into a JS error.
//
// Handles are shared_ptr so that an async worker keeps what it uses alive: a Model disposed
// (or garbage collected) while one of its contexts lives is freed after that context; a Context
// disposed while a decode is in flight is freed when the decode finishes.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "edgelora.h"

namespace addon {

// Owners are never copied: a copy's destructor would free the handle twice.
struct ModelHandle {
  el_model* model = nullptr;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  ModelHandle(el_model* m, int32_t n) : model(m), n_vocab(n) {}
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;
  ~ModelHandle() { el_model_free(model); }
};

struct ContextHandle {
  el_context* ctx = nullptr;
  std::shared_ptr<ModelHandle> model;  // the context reads the model's weights
  el_context_params params;            // as created (defaults filled in)
  bool busy = false;                   // a decode is in flight (set and cleared on the JS thread)
  bool lora_loading = false;           // an adapter load is in flight (may overlap a decode)
  el_context_stats last_stats{};       // what stats() reports while busy
  ContextHandle() = default;
  ContextHandle(const ContextHandle&) = delete;
  ContextHandle& operator=(const ContextHandle&) = delete;
  ~ContextHandle() { el_context_free(ctx); }
};

struct SamplerHandle {
  el_sampler* sampler = nullptr;
  bool busy = false;  // used by an in-flight decode (its RNG state is not shareable across threads)
  SamplerHandle() = default;
  SamplerHandle(const SamplerHandle&) = delete;
  SamplerHandle& operator=(const SamplerHandle&) = delete;
  ~SamplerHandle() { el_sampler_free(sampler); }
};

// Constructors of the wrapped classes, stored as the env's instance data.
struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference context_ctor;
  Napi::FunctionReference sampler_ctor;
};

inline const char* status_code(el_status s) {
  switch (s) {
    case EL_OK: return "OK";
    case EL_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case EL_ERR_BAD_FILE: return "BAD_FILE";
    case EL_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case EL_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    default: return "INTERNAL";
  }
}

// A JS Error with the engine's message and `code` set to the status name.
inline Napi::Error engine_error(Napi::Env env, el_status s, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message.empty() ? std::string("engine error ") + status_code(s) : message);
  e.Set("code", Napi::String::New(env, status_code(s)));
  return e;
}

// Async worker settling a promise; Execute() runs off the JS thread and reports failure
// through fail(), never by throwing.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void fail(el_status s, const char* message) {
    status_ = s;
    SetError(message);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(rejection(e).Value()); }
  // The engine error (with its status code) for the message SetError was given.
  Napi::Error rejection(const Napi::Error& e) { return engine_error(Env(), status_, e.Message()); }
  Napi::Promise::Deferred deferred_;

 private:
  el_status status_ = EL_ERR_INTERNAL;
};

// Setup functions of each class (one file each), called from the module init.
Napi::Function init_model(Napi::Env env);
Napi::Function init_context(Napi::Env env);
Napi::Function init_sampler(Napi::Env env);

// Creates a JS Model / Context around a handle (through the class constructor).
Napi::Object new_model(Napi::Env env, std::shared_ptr<ModelHandle> h);
Napi::Object new_context(Napi::Env env, std::shared_ptr<ContextHandle> h);
// The handle behind a JS Sampler, or nullptr if v is not one.
std::shared_ptr<SamplerHandle> sampler_of(Napi::Env env, Napi::Value v);

}  // namespace addon
