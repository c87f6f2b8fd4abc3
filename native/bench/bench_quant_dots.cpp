// Decode GEMV speed per weight type (a benchmark, not a test): one token against a matrix of
// n_in = 4864 columns, through matmul_rows on one thread, for a matrix kept in cache (the kernel's
// own ceiling) and one streamed from memory (64 MiB), in GB/s of weight bytes; each also through
// one vec_dot per row (matmul_rows' decode is that loop; the two columns show the noise). A type whose
// streamed rate is well under its cached rate is bound by memory, one near it by its instructions.
//
// Usage: bench_quant_dots [--path NAME] [--types q5_0,q4_K,...] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "tensor_types.h"

using namespace el;
using namespace el::kernels;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Best of a few passes over the rows (other tenants of a shared machine come and go), in GB/s:
// through matmul_rows (the engine's decode), and through one vec_dot per row, alternately.
void gemv_rates(const KernelSet& ks, TensorType t, const std::vector<uint8_t>& w, int64_t n_in, int64_t n_out,
                const PreparedActivations& act, std::vector<float>& out, double rate[2]) {
  const WeightView view{t, w.data(), n_in, n_out, row_size(t, n_in)};
  rate[0] = rate[1] = 0;
  for (int pass = 0; pass < 10; ++pass) {
    const int k = pass % 2;
    const double t0 = now();
    int reps = 0;
    do {
      if (k == 0) {
        matmul_rows(ks, view, act, 0, n_out, out.data(), n_out);
      } else {
        for (int64_t r = 0; r < n_out; ++r) ks.of(t).vec_dot(int(n_in), &out[size_t(r)], w.data() + r * view.row_bytes, act.row(0));
      }
      ++reps;
    } while (now() - t0 < 0.2);
    rate[k] = std::max(rate[k], double(w.size()) * reps / (now() - t0) / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const KernelSet* ks = &best();
  std::string types = "q4_0,q8_0,q4_1,q5_0,q5_1,iq4_nl,q2_K,q3_K,q4_K,q5_K,q6_K";
  const char* json_path = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--path") == 0) ks = by_name(argv[i + 1]);
    if (std::strcmp(argv[i], "--types") == 0) types = argv[i + 1];
    if (std::strcmp(argv[i], "--json") == 0) json_path = argv[i + 1];
  }
  std::string json;
  if (!ks) {
    std::fprintf(stderr, "unknown or unsupported path\n");
    return 1;
  }
  const int64_t n_in = 4864;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n_in));
  for (float& v : x) v = dist(rng);
  std::printf("path %s, one thread, n_in %lld, GB/s of weights (matmul_rows; one vec_dot per row)\n"
              "| type | cached | cached, vec_dot | streamed | streamed, vec_dot |\n|---|---|---|---|---|\n",
              ks->name, (long long)n_in);
  for (size_t p = 0; p < types.size();) {
    size_t q = types.find(',', p);
    if (q == std::string::npos) q = types.size();
    const std::string name = types.substr(p, q - p);
    p = q + 1;
    TensorType t{};
    bool found = false;
    for (uint32_t id = 0; id < uint32_t(kMaxTypeId); ++id)
      if (const TypeTraits* tr = type_traits(id); tr && name == tr->name && ks->of(TensorType(id)).vec_dot) {
        t = TensorType(id);
        found = true;
      }
    if (!found) {
      std::fprintf(stderr, "skipping %s: not a weight type\n", name.c_str());
      continue;
    }
    const size_t rb = row_size(t, n_in);
    std::vector<float> row(static_cast<size_t>(n_in));
    for (float& v : row) v = dist(rng);
    std::vector<uint8_t> one(rb);
    scalar().of(t).from_float(row.data(), one.data(), n_in);
    PreparedActivations act;
    prepare_activations(*ks, t, x.data(), n_in, 1, n_in, act);
    double rate[2][2];
    for (int k = 0; k < 2; ++k) {
      const int64_t n_out = k == 0 ? int64_t(256 * 1024 / rb) : int64_t((64 << 20) / rb);
      std::vector<uint8_t> w(rb * size_t(n_out));
      for (int64_t r = 0; r < n_out; ++r) std::memcpy(w.data() + size_t(r) * rb, one.data(), rb);
      std::vector<float> out(static_cast<size_t>(n_out));
      gemv_rates(*ks, t, w, n_in, n_out, act, out, rate[k]);
    }
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", name.c_str(), rate[0][0], rate[0][1], rate[1][0], rate[1][1]);
    char line[240];
    std::snprintf(line, sizeof line,
                  "%s{\"type\":\"%s\",\"cachedGBs\":%.2f,\"cachedVecDotGBs\":%.2f,\"streamedGBs\":%.2f,"
                  "\"streamedVecDotGBs\":%.2f}",
                  json.empty() ? "" : ",", name.c_str(), rate[0][0], rate[0][1], rate[1][0], rate[1][1]);
    json += line;
  }
  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) return 1;
    std::fprintf(f, "{\"path\":\"%s\",\"nIn\":%lld,\"rows\":[%s]}\n", ks->name, (long long)n_in, json.c_str());
    std::fclose(f);
    std::printf("wrote %s\n", json_path);
  }
  return 0;
}
