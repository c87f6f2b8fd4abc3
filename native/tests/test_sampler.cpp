// Sampler: greedy, determinism per seed, filters, and the sampled distribution.
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "check.h"
#include "edgelora.h"

namespace {

el_sampler* make(float temperature, int32_t top_k, float top_p, float min_p, uint64_t seed) {
  el_sampler_params p = el_sampler_default_params();
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  el_sampler* s = nullptr;
  el_error err{};
  CHECK_MSG(el_sampler_new(&p, &s, &err) == EL_OK, "%s", err.message);
  return s;
}

std::vector<double> softmax(const std::vector<float>& logits, double temp = 1.0) {
  // A plain compare (not std::fmax): aarch64 gcc 12 crashes vectorizing that reduction.
  double mx = logits[0];
  for (float l : logits)
    if (l > mx) mx = l;
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += (p[i] = std::exp((logits[i] - mx) / temp));
  for (auto& x : p) x /= sum;
  return p;
}

// Pseudo-random logits from a fixed LCG, so the test needs no sampler code to build its inputs.
std::vector<float> test_logits(int n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = float(seed >> 8) / float(1 << 24) * 8.0f - 4.0f;
  }
  return v;
}

// Draws n tokens and checks that only `allowed` appear, each with frequency within 6 sigma of
// `expected` (plus a small absolute slack); with a fixed seed the outcome is deterministic, and
// a correct sampler sits far inside the bound.
void check_distribution(el_sampler* s, const std::vector<float>& logits, const std::map<int, double>& expected,
                        int n, const char* what) {
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) counts[el_sampler_sample(s, logits.data(), int32_t(logits.size()), nullptr)]++;
  for (const auto& [id, c] : counts) CHECK_MSG(expected.count(id), "%s: token %d must be filtered out", what, id);
  for (const auto& [id, p] : expected) {
    const double f = double(counts[id]) / n;
    const double sigma = std::sqrt(p * (1 - p) / n);
    CHECK_MSG(std::fabs(f - p) <= 6 * sigma + 1e-3, "%s: token %d frequency %g, expected %g", what, id, f, p);
  }
}

void test_greedy() {
  const auto logits = test_logits(1000, 7);
  int best = 0;
  for (int i = 1; i < 1000; ++i)
    if (logits[i] > logits[best]) best = i;
  el_sampler* s = make(0.0f, 0, 1.0f, 0.0f, 1);
  float lp = 0;
  CHECK(el_sampler_sample(s, logits.data(), 1000, &lp) == best);
  CHECK_NEAR(lp, std::log(softmax(logits)[best]), 1e-5);
  // Ties go to the first maximum.
  std::vector<float> tie = {1.0f, 3.0f, 3.0f, 2.0f};
  CHECK(el_sampler_sample(s, tie.data(), 4, nullptr) == 1);
  el_sampler_free(s);
}

void test_top_k1_is_greedy() {
  el_sampler* g = make(0.0f, 0, 1.0f, 0.0f, 1);
  el_sampler* k1 = make(1.7f, 1, 1.0f, 0.0f, 99);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const auto logits = test_logits(300, seed);
    CHECK(el_sampler_sample(k1, logits.data(), 300, nullptr) == el_sampler_sample(g, logits.data(), 300, nullptr));
  }
  el_sampler_free(g);
  el_sampler_free(k1);
}

void test_determinism() {
  const auto logits = test_logits(64, 3);
  el_sampler* a = make(1.0f, 0, 1.0f, 0.0f, 42);
  el_sampler* b = make(1.0f, 0, 1.0f, 0.0f, 42);
  el_sampler* c = make(1.0f, 0, 1.0f, 0.0f, 43);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 500; ++i) {
    const int ta = el_sampler_sample(a, logits.data(), 64, nullptr);
    same_ab += ta == el_sampler_sample(b, logits.data(), 64, nullptr);
    same_ac += ta == el_sampler_sample(c, logits.data(), 64, nullptr);
  }
  CHECK(same_ab == 500);
  CHECK_MSG(same_ac < 250, "another seed must give another sequence (%d of 500 equal)", same_ac);
  el_sampler_free(a);
  el_sampler_free(b);
  el_sampler_free(c);
}

void test_logprob_is_raw() {
  // The logprob is under the model's distribution, whatever temperature and filters did.
  const auto logits = test_logits(50, 11);
  const auto p = softmax(logits);
  el_sampler* s = make(0.3f, 5, 0.9f, 0.05f, 5);
  for (int i = 0; i < 100; ++i) {
    float lp = 0;
    const int t = el_sampler_sample(s, logits.data(), 50, &lp);
    CHECK_NEAR(lp, std::log(p[t]), 1e-5);
  }
  el_sampler_free(s);
}

void test_distributions() {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -2.0f, 1.5f, -0.5f};
  const auto p = softmax(logits);  // order by logit: 0, 6, 1, 2, 3, 7, 4, 5
  const int n = 100000;

  std::map<int, double> all;
  for (int i = 0; i < 8; ++i) all[i] = p[i];
  el_sampler* s = make(1.0f, 0, 1.0f, 0.0f, 1234);
  check_distribution(s, logits, all, n, "plain");
  el_sampler_free(s);

  // Temperature 0.5 squares the probabilities (renormalised).
  const auto p_half = softmax(logits, 0.5);
  std::map<int, double> tempered;
  for (int i = 0; i < 8; ++i) tempered[i] = p_half[i];
  s = make(0.5f, 0, 1.0f, 0.0f, 77);
  check_distribution(s, logits, tempered, n, "temperature 0.5");
  el_sampler_free(s);

  // Top-k 3 keeps tokens 0, 6, 1.
  const double k3 = p[0] + p[6] + p[1];
  s = make(1.0f, 3, 1.0f, 0.0f, 5);
  check_distribution(s, logits, {{0, p[0] / k3}, {6, p[6] / k3}, {1, p[1] / k3}}, n, "top-k 3");
  el_sampler_free(s);

  // Top-p: the smallest head of the sorted distribution whose mass reaches top_p.
  const double head2 = p[0] + p[6];
  const float top_p = float(head2 + 0.01);  // needs a third token
  const double head3 = head2 + p[1];
  s = make(1.0f, 0, top_p, 0.0f, 6);
  check_distribution(s, logits, {{0, p[0] / head3}, {6, p[6] / head3}, {1, p[1] / head3}}, n, "top-p");
  el_sampler_free(s);

  // Min-p 0.3: keep p >= 0.3 * p_max, i.e. logit >= 2 + ln 0.3 = 0.796: tokens 0, 6, 1.
  s = make(1.0f, 0, 1.0f, 0.3f, 8);
  check_distribution(s, logits, {{0, p[0] / k3}, {6, p[6] / k3}, {1, p[1] / k3}}, n, "min-p");
  el_sampler_free(s);

  // Filters cut the model's distribution, then temperature reshapes the survivors.
  const auto q = softmax({logits[0], logits[6], logits[1]}, 2.0);
  s = make(2.0f, 3, 1.0f, 0.0f, 9);
  check_distribution(s, logits, {{0, q[0]}, {6, q[1]}, {1, q[2]}}, n, "top-k 3 at temperature 2");
  el_sampler_free(s);
}

void test_bad_params() {
  const struct {
    float temperature;
    int32_t top_k;
    float top_p, min_p;
  } bad[] = {{-1.0f, 0, 1.0f, 0.0f}, {NAN, 0, 1.0f, 0.0f}, {1.0f, -1, 1.0f, 0.0f},
             {1.0f, 0, 0.0f, 0.0f},  {1.0f, 0, 1.5f, 0.0f}, {1.0f, 0, 1.0f, -0.1f}, {1.0f, 0, 1.0f, 2.0f}};
  for (const auto& b : bad) {
    el_sampler_params p = el_sampler_default_params();
    p.temperature = b.temperature;
    p.top_k = b.top_k;
    p.top_p = b.top_p;
    p.min_p = b.min_p;
    el_sampler* s = nullptr;
    el_error err{};
    CHECK(el_sampler_new(&p, &s, &err) == EL_ERR_INVALID_ARGUMENT);
    CHECK(s == nullptr);
    CHECK(std::string(err.message).find("sampler:") == 0);
  }
  el_sampler* s = make(1.0f, 0, 1.0f, 0.0f, 1);
  CHECK(el_sampler_sample(s, nullptr, 10, nullptr) == -1);
  float one = 0.0f;
  CHECK(el_sampler_sample(s, &one, 0, nullptr) == -1);
  el_sampler_free(s);
}

}  // namespace

int main() {
  test_greedy();
  test_top_k1_is_greedy();
  test_determinism();
  test_logprob_is_raw();
  test_distributions();
  test_bad_params();
  return el_test::test_exit_code();
}
