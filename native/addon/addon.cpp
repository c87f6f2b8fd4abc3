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

// Loads a model off the JS thread; with a progress callback, calls it on the JS thread as
// (bytesDone, bytesTotal) at most every 1% of the weights and once at the end. The promise
// settles only after the last progress call has run: a worker's completion and a thread-safe
// function's queued calls reach the JS thread by different routes, in no fixed order, so with
// a callback the promise is settled by the thread-safe function's finalizer, which runs once
// its queue is drained.
class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, Napi::Function progress) : PromiseWorker(env), path_(std::move(path)) {
    if (progress.IsEmpty()) return;
    settlement_ = new Settlement{deferred_, nullptr, Napi::ObjectReference()};
    progress_ = Napi::ThreadSafeFunction::New(env, progress, "edgelora.loadModel.progress", 0, 1, settlement_,
                                              &LoadWorker::settle, static_cast<void*>(nullptr));
  }

 protected:
  void Execute() override {
    el_model_params p{path_.c_str(), nullptr, nullptr};
    if (progress_) {
      p.progress = &LoadWorker::on_progress;
      p.progress_user = this;
    }
    el_error err{};
    el_model* m = nullptr;
    el_status s = el_model_load(&p, &m, &err);
    if (s != EL_OK) return fail(s, err.message);
    handle_ = std::make_shared<ModelHandle>(m, 0);
    el_model_info mi{};
    if ((s = el_model_get_info(m, &mi, &err)) != EL_OK) return fail(s, err.message);
    handle_->n_vocab = mi.n_vocab;
    handle_->n_embd = mi.n_embd;
  }
  void OnOK() override {
    if (!progress_) return deferred_.Resolve(new_model(Env(), handle_));
    settlement_->handle = handle_;
    progress_.Release();  // settle() resolves once the queued progress calls have run
  }
  void OnError(const Napi::Error& e) override {
    if (!progress_) return PromiseWorker::OnError(e);
    settlement_->error = Napi::Persistent(rejection(e).Value());
    progress_.Release();
  }

 private:
  // What the finalizer needs to settle the promise; owned by the thread-safe function.
  struct Settlement {
    Napi::Promise::Deferred deferred;
    std::shared_ptr<ModelHandle> handle;
    Napi::ObjectReference error;
  };
  static void settle(Napi::Env env, void*, Settlement* s) {
    if (s->handle)
      s->deferred.Resolve(new_model(env, s->handle));
    else if (!s->error.IsEmpty())
      s->deferred.Reject(s->error.Value());
    delete s;
  }
  static void on_progress(uint64_t done, uint64_t total, void* user) {
    auto* self = static_cast<LoadWorker*>(user);
    if (done < total && total > 0 && (done - self->reported_) * 100 < total) return;
    self->reported_ = done;
    auto* v = new std::pair<double, double>(double(done), double(total));
    // Blocking: the queue holds one call, so a slow JS thread slows the load a little rather
    // than losing the final call.
    const napi_status st = self->progress_.BlockingCall(v, [](Napi::Env env, Napi::Function fn, std::pair<double, double>* d) {
      fn.Call({Napi::Number::New(env, d->first), Napi::Number::New(env, d->second)});
      delete d;
    });
    if (st != napi_ok) delete v;
  }

  std::string path_;
  Napi::ThreadSafeFunction progress_;
  Settlement* settlement_ = nullptr;
  uint64_t reported_ = 0;
  std::shared_ptr<ModelHandle> handle_;
};

Napi::Value load_model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel(path, progress?): path must be a string");
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsFunction())
    throw Napi::TypeError::New(env, "loadModel(path, progress?): progress must be a function");
  Napi::Function progress = info.Length() > 1 && info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), progress);
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
