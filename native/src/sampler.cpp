// Token sampler (see sampler.h) and the el_sampler_* entry points of the C API.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <new>
#include <string>

#include "error.h"

namespace el {

// ---- RNG ---------------------------------------------------------------------

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

// ---- sampler -------------------------------------------------------------------

Sampler::Sampler(const el_sampler_params& p) : params_(p), rng_(p.seed) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    fail(ErrorKind::InvalidArgument, "sampler: temperature must be a finite number >= 0, got " +
                                         std::to_string(p.temperature));
  if (p.top_k < 0) fail(ErrorKind::InvalidArgument, "sampler: top_k must be >= 0 (0 = off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    fail(ErrorKind::InvalidArgument, "sampler: top_p must be in (0, 1] (1 = off), got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    fail(ErrorKind::InvalidArgument, "sampler: min_p must be in [0, 1] (0 = off), got " + std::to_string(p.min_p));
}

// Descending by logit; ties broken by id so results never depend on sort internals.
bool Sampler::before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void Sampler::apply_top_k() {
  const size_t k = size_t(params_.top_k);
  if (k == 0 || k >= cand_.size()) return;
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), before);
  cand_.resize(k);
  sorted_ = true;
}

void Sampler::softmax(double inv_temp) {
  double max_l = -std::numeric_limits<double>::infinity();
  for (const auto& c : cand_) max_l = std::max(max_l, double(c.logit));
  double sum = 0.0;
  for (auto& c : cand_) sum += (c.p = std::exp((double(c.logit) - max_l) * inv_temp));
  for (auto& c : cand_) c.p /= sum;
}

void Sampler::apply_top_p() {
  if (params_.top_p >= 1.0f) return;
  if (!sorted_) {
    std::sort(cand_.begin(), cand_.end(), before);
    sorted_ = true;
  }
  softmax(1.0);
  // Keep the smallest head whose mass reaches top_p.
  double cum = 0.0;
  size_t keep = cand_.size();
  for (size_t i = 0; i < cand_.size(); ++i) {
    cum += cand_[i].p;
    if (cum >= double(params_.top_p)) {
      keep = i + 1;
      break;
    }
  }
  cand_.resize(keep);
}

void Sampler::apply_min_p() {
  if (params_.min_p <= 0.0f) return;
  softmax(1.0);
  double p_max = 0.0;
  for (const auto& c : cand_) p_max = std::max(p_max, c.p);
  const double threshold = double(params_.min_p) * p_max;
  // The most likely token always passes (p_max >= min_p * p_max), so cand_ stays non-empty.
  cand_.erase(std::remove_if(cand_.begin(), cand_.end(), [&](const Candidate& c) { return c.p < threshold; }),
              cand_.end());
}

static int32_t argmax(const float* logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;  // first of equal maxima, as llama.cpp's greedy
  return best;
}

static double log_softmax_at(const float* logits, int32_t n, int32_t id) {
  double max_l = -std::numeric_limits<double>::infinity();
  for (int32_t i = 0; i < n; ++i) max_l = std::max(max_l, double(logits[i]));
  double sum = 0.0;
  for (int32_t i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - max_l);
  return double(logits[id]) - max_l - std::log(sum);
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab, float* logprob) {
  int32_t id;
  if (params_.temperature == 0.0f) {
    id = argmax(logits, n_vocab);
  } else {
    cand_.resize(size_t(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {i, logits[i], 0.0};
    sorted_ = false;
    apply_top_k();
    apply_top_p();
    apply_min_p();
    softmax(1.0 / double(params_.temperature));
    const double u = rng_.uniform();
    double cum = 0.0;
    id = cand_.back().id;  // if rounding leaves cum just below u
    for (const auto& c : cand_) {
      cum += c.p;
      if (u < cum) {
        id = c.id;
        break;
      }
    }
  }
  if (logprob) *logprob = float(log_softmax_at(logits, n_vocab, id));
  return id;
}

}  // namespace el

// ---- C API ---------------------------------------------------------------------

static void set_error(el_error* err, const char* msg) {
  if (!err) return;
  std::snprintf(err->message, sizeof err->message, "%s", msg);
}

extern "C" {

el_sampler_params el_sampler_default_params(void) {
  el_sampler_params p;
  p.temperature = 0.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 0;
  return p;
}

el_status el_sampler_new(const el_sampler_params* p, el_sampler** out, el_error* err) {
  if (!p || !out) {
    set_error(err, "el_sampler_new: params and out must not be NULL");
    return EL_ERR_INVALID_ARGUMENT;
  }
  *out = nullptr;
  try {
    *out = new el_sampler{el::Sampler(*p)};
    return EL_OK;
  } catch (const el::Error& e) {
    set_error(err, e.what());
    return el_status(e.kind);
  } catch (const std::bad_alloc&) {
    set_error(err, "el_sampler_new: out of memory");
    return EL_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(err, e.what());
    return EL_ERR_INTERNAL;
  }
}

void el_sampler_free(el_sampler* s) { delete s; }

int32_t el_sampler_sample(el_sampler* s, const float* logits, int32_t n_vocab, float* logprob) {
  if (!s || !logits || n_vocab <= 0) return -1;
  try {
    return s->impl.sample(logits, n_vocab, logprob);
  } catch (...) {  // only bad_alloc of the candidate buffer can get here
    return -1;
  }
}

}  // extern "C"
