// Module entry of the edgelora Node addon: a thin shell over the C API (edgelora.h).
// Exports loadModel(path) -> Promise<Model>, the Model/Context/Sampler classes, and the
// kernel path selection.
#include "handles.h"

namespace addon {

Napi::Value sd_notify(const Napi::CallbackInfo& info);  // sd_notify.cpp

namespace {

Napi::Value kernel_path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), el_kernel_path()); }

Napi::Value set_kernel_path(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setKernelPath(name): name must be a string");
  el_error err{};
  const el_status s = el_set_kernel_path(info[0].As<Napi::String>().Utf8Value().c_str(), &err);
  if (s != EL_OK) throw engine_error(env, s, err.message);
  return env.Undefined();
}

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path) : PromiseWorker(env), path_(std::move(path)) {}

 protected:
  void Execute() override {
    el_model_params p{path_.c_str()};
    el_error err{};
    el_model* m = nullptr;
    el_status s = el_model_load(&p, &m, &err);
    if (s != EL_OK) return fail(s, err.message);
    handle_ = std::make_shared<ModelHandle>(m, 0);
    el_model_info mi{};
    if ((s = el_model_get_info(m, &mi, &err)) != EL_OK) return fail(s, err.message);
    handle_->n_vocab = mi.n_vocab;
  }
  void OnOK() override { deferred_.Resolve(new_model(Env(), handle_)); }

 private:
  std::string path_;
  std::shared_ptr<ModelHandle> handle_;
};

Napi::Value load_model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel(path): path must be a string");
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // freed with the env
  Napi::Function model = init_model(env);
  Napi::Function context = init_context(env);
  Napi::Function sampler = init_sampler(env);
  data->model_ctor = Napi::Persistent(model);
  data->context_ctor = Napi::Persistent(context);
  data->sampler_ctor = Napi::Persistent(sampler);
  exports.Set("Model", model);
  exports.Set("Context", context);
  exports.Set("Sampler", sampler);
  exports.Set("loadModel", Napi::Function::New(env, load_model, "loadModel"));
  exports.Set("kernelPath", Napi::Function::New(env, kernel_path, "kernelPath"));
  exports.Set("setKernelPath", Napi::Function::New(env, set_kernel_path, "setKernelPath"));
  exports.Set("sdNotify", Napi::Function::New(env, sd_notify, "sdNotify"));
  return exports;
}

}  // namespace
}  // namespace addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return addon::init(env, exports); }
NODE_API_MODULE(edgelora, Init)
