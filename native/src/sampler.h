// Token sampler behind the el_sampler_* C API: greedy, temperature, top-k, top-p, min-p,
// with a seeded RNG so that one seed always gives the same tokens.
//
// Order of operations follows llama.cpp's default chain: the filters (top-k, then top-p,
// then min-p) cut the model's own distribution, and temperature reshapes only the
// survivors. So a filter keeps the same tokens whatever the temperature.
#pragma once
#include <cstdint>
#include <vector>

#include "edgelora.h"

namespace el {

// xoshiro256** seeded through splitmix64: small, fast, and the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // in [0, 1)

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // Throws el::Error(InvalidArgument) for out-of-range parameters.
  explicit Sampler(const el_sampler_params& p);
  // Returns the sampled id and sets *logprob = log_softmax(logits)[id] (raw logits).
  // (el_sampler_sample returns -1 for a NULL sampler/logits or n_vocab <= 0.)
  int32_t sample(const float* logits, int32_t n_vocab, float* logprob);

 private:
  struct Candidate {
    int32_t id;
    float logit;
    double p;
  };
  static bool before(const Candidate& a, const Candidate& b);
  void apply_top_k();
  void softmax(double inv_temp);  // fills p over cand_ from logit * inv_temp
  void apply_top_p();
  void apply_min_p();

  el_sampler_params params_;
  Rng rng_;
  std::vector<Candidate> cand_;  // reused between calls: no allocation per token
  bool sorted_ = false;          // cand_ sorted by logit, descending
};

}  // namespace el

struct el_sampler {
  el::Sampler impl;
};
