// JS class Sampler: new Sampler({temperature, topK, topP, minP, seed}); used by Context.decode.
#include <cmath>

#include "handles.h"
#include "js_values.h"

namespace addon {
namespace {

class Sampler : public Napi::ObjectWrap<Sampler> {
 public:
  static Napi::Function define(Napi::Env env) { return DefineClass(env, "Sampler", {}); }

  explicit Sampler(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sampler>(info) {
    Napi::Env env = info.Env();
    el_sampler_params p = el_sampler_default_params();
    if (info.Length() > 0 && !absent(info[0])) {
      if (!info[0].IsObject()) throw Napi::TypeError::New(env, "new Sampler(params): params must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      p.temperature = float(number_or(env, o, "temperature", p.temperature));
      p.top_k = int_or(env, o, "topK", p.top_k);
      p.top_p = float(number_or(env, o, "topP", p.top_p));
      p.min_p = float(number_or(env, o, "minP", p.min_p));
      const double seed = number_or(env, o, "seed", double(p.seed));
      if (seed < 0 || seed != std::floor(seed) || seed > 9007199254740991.0)
        throw Napi::TypeError::New(env, "seed must be an integer in [0, 2^53)");
      p.seed = uint64_t(seed);
    }
    el_sampler* s = nullptr;
    el_error err{};
    const el_status st = el_sampler_new(&p, &s, &err);
    if (st != EL_OK) throw engine_error(env, st, err.message);
    handle_ = std::make_shared<SamplerHandle>();
    handle_->sampler = s;
  }

  std::shared_ptr<SamplerHandle> handle_;
};

}  // namespace

Napi::Function init_sampler(Napi::Env env) { return Sampler::define(env); }

std::shared_ptr<SamplerHandle> sampler_of(Napi::Env env, Napi::Value v) {
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->sampler_ctor.Value())) return nullptr;
  return Sampler::Unwrap(v.As<Napi::Object>())->handle_;
}

}  // namespace addon
