// Hidden states of a (partial) forward pass: the router's features (el_embed). It reuses the
// decode path's own steps, so the states are exactly those a decode computes.
#include <algorithm>

#include "model.h"
#include "rms_norm.h"

namespace el {

const float* Context::hidden(const BatchView& b, int n_layers) {
  validate_and_reserve(b);
  embed(b);
  rope_tables(b);
  const int nl = n_layers < 0 ? hp_.n_layer : std::min(n_layers, hp_.n_layer);
  for (int il = 0; il < nl; ++il) layer_forward(il, b);
  for (const SeqGrowth& g : growth_) kv_.set_length(g.seq, g.new_len);
  n_outputs_ = 0;  // this call leaves no logits
  if (nl < hp_.n_layer) return x_.data();
  // Every layer: the final norm, as the output head sees it.
  const int E = hp_.n_embd;
  for (int t = 0; t < b.n_tokens; ++t)
    rms_norm(&x_[size_t(t) * E], model_.output_norm().data(), &xn_[size_t(t) * E], E, hp_.rms_eps);
  return xn_.data();
}

}  // namespace el
