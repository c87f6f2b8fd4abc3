// The C API's opaque handles (edgelora.h), defined once so that every source implementing
// part of the API (engine.cpp, engine_features.cpp, sampler.cpp) sees the same layout.
#pragma once

#include <memory>

#include "model.h"

struct el_model {
  std::unique_ptr<el::Model> impl;
};

struct el_context {
  el_model* model;  // must outlive the context
  el::Context impl;
};
