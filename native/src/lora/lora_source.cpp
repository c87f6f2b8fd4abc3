// Format dispatch and the checks both adapter formats share.
#include "lora_source.h"

#include <sys/stat.h>

#include <cmath>
#include <set>
#include <utility>

#include "../error.h"

namespace el::lora {

float LoraSource::factor() const {
  if (rslora) return alpha / std::sqrt(float(rank));
  return alpha == 0 ? 1.0f : alpha / float(rank);
}

LoraSource open_adapter(const std::string& path, const ModelShapes& model, int max_rank) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) fail(ErrorKind::BadFile, path + ": no such file or directory");
  LoraSource src = S_ISDIR(st.st_mode) ? open_peft_adapter(path, model) : open_gguf_adapter(path, model);
  split_fused_pairs(src, model);
  validate_source(src, model, max_rank);
  return src;
}

namespace {

std::string shape(const TensorRef& t) {
  return "[" + std::to_string(t.ne0) + ", " + std::to_string(t.ne1) + "]";
}

void check_type(const std::string& path, const TensorRef& t) {
  switch (t.type) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16: case TensorType::Q8_0: break;
    default:
      fail(ErrorKind::Unsupported, path + ": tensor '" + t.name + "' has type " + type_traits(t.type).name +
                                       " (LoRA tensors may be f32, f16, bf16 or q8_0)");
  }
  if (t.ne0 % type_traits(t.type).block_size != 0)
    fail(ErrorKind::BadFile, path + ": tensor '" + t.name + "' row length " + std::to_string(t.ne0) +
                                 " is not a multiple of the " + type_traits(t.type).name + " block size");
}

}  // namespace

void split_fused_pairs(LoraSource& src, const ModelShapes& model) {
  std::vector<LoraPair> out;
  out.reserve(src.pairs.size());
  for (LoraPair& pr : src.pairs) {
    if (!pr.fused) {
      out.push_back(std::move(pr));
      continue;
    }
    const bool qkv = pr.module == Module::Q;
    if (qkv ? !model.fused_qkv : !model.fused_gate_up)
      fail(ErrorKind::InvalidArgument, src.path + ": tensor '" + pr.b.name + "' adapts a fused " + (qkv ? "q/k/v" : "gate/up") +
                                           " projection, which this " + model.arch + " model does not have");
    const Module qkv_parts[] = {Module::Q, Module::K, Module::V};
    const Module gate_up_parts[] = {Module::Gate, Module::Up};
    const Module* parts = qkv ? qkv_parts : gate_up_parts;
    const int n_parts = qkv ? 3 : 2;
    int64_t rows = 0;
    for (int i = 0; i < n_parts; ++i) rows += model.n_out[int(parts[i])];
    if (pr.b.ne1 != rows)
      fail(ErrorKind::InvalidArgument, src.path + ": tensor '" + pr.b.name + "' has " + std::to_string(pr.b.ne1) +
                                           " rows; the model's fused projection has " + std::to_string(rows) +
                                           " (adapter for another base model?)");
    const size_t row_bytes = row_size(pr.b.type, pr.b.ne0);
    int64_t first = 0;
    for (int i = 0; i < n_parts; ++i) {
      LoraPair part = pr;
      part.fused = false;
      part.module = parts[i];
      part.b.data = pr.b.data + size_t(first) * row_bytes;
      part.b.ne1 = model.n_out[int(parts[i])];
      part.b.name = pr.b.name + " (" + module_short_name(parts[i]) + " rows)";
      first += part.b.ne1;
      out.push_back(std::move(part));
    }
  }
  src.pairs = std::move(out);
}

void validate_source(LoraSource& src, const ModelShapes& model, int max_rank) {
  const std::string& p = src.path;
  if (src.pairs.empty()) fail(ErrorKind::BadFile, p + ": adapter has no LoRA tensors");
  std::set<std::pair<int, int>> seen;
  src.rank = 0;
  for (const LoraPair& pr : src.pairs) {
    const int mi = int(pr.module);
    const std::string what = std::string("layer ") + std::to_string(pr.layer) + " " + module_short_name(pr.module);
    if (pr.layer < 0 || pr.layer >= model.n_layer)
      fail(ErrorKind::InvalidArgument, p + ": tensor '" + pr.a.name + "' is for layer " + std::to_string(pr.layer) +
                                           " but the model has " + std::to_string(model.n_layer) +
                                           " layers (adapter for another base model?)");
    if (!seen.insert({pr.layer, mi}).second) fail(ErrorKind::BadFile, p + ": " + what + " is adapted twice");
    check_type(p, pr.a);
    check_type(p, pr.b);
    const int64_t r = pr.a.ne1;
    if (r < 1) fail(ErrorKind::BadFile, p + ": tensor '" + pr.a.name + "' has rank 0");
    if (pr.a.ne0 != model.n_in[mi] || pr.b.ne1 != model.n_out[mi] || pr.b.ne0 != r)
      fail(ErrorKind::InvalidArgument,
           p + ": " + what + ": A '" + pr.a.name + "' is " + shape(pr.a) + " and B '" + pr.b.name + "' is " +
               shape(pr.b) + " (as [row length, rows]); the model needs A [" + std::to_string(model.n_in[mi]) +
               ", r] and B [r, " + std::to_string(model.n_out[mi]) + "] (adapter for another base model?)");
    if (src.rank == 0) src.rank = int(r);
    if (r != src.rank)
      fail(ErrorKind::Unsupported, p + ": " + what + " has rank " + std::to_string(r) + " but other modules have rank " +
                                       std::to_string(src.rank) + " (mixed ranks are not supported)");
  }
  if (src.rank > max_rank)
    fail(ErrorKind::InvalidArgument, p + ": rank " + std::to_string(src.rank) + " exceeds the slot pool's max rank " +
                                         std::to_string(max_rank));
  if (!std::isfinite(src.alpha)) fail(ErrorKind::BadFile, p + ": LoRA alpha is not finite");
}

}  // namespace el::lora
