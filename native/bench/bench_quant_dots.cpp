// Decode GEMV speed per weight type (a benchmark, not a test): one token against a matrix of
// n_in = 4864 columns, through matmul_rows on one thread, for a matrix kept in cache (the kernel's
// own ceiling) and one streamed from memory (64 MiB), in GB/s of weight bytes; each also through
// one vec_dot per row (matmul_rows' decode is that loop; the two columns show the noise), and
// through the repacked copy the model loader makes where the path packs the type (packed.h,
// packed_k.h). Then a prefill-sized batch (128 tokens x 896 rows), over the rows and packed. A type whose
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
#include "kernels/packed.h"
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

// The same weights repacked (kernels/packed.h, packed_k.h), when the path packs the type: the
// decode GEMV through matmul_rows, best of a few passes, in GB/s of the GGUF bytes.
double packed_rate(const KernelSet& ks, TensorType t, const std::vector<uint8_t>& w, int64_t n_in, int64_t n_out,
                   const PreparedActivations& act, std::vector<float>& out) {
  std::vector<uint8_t> p(packed_bytes(t, n_in, n_out));
  repack(t, w.data(), n_in, n_out, p.data());
  const WeightView view{t, p.data(), n_in, n_out, row_size(t, n_in), WeightLayout::Packed8};
  double rate = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const double t0 = now();
    int reps = 0;
    do {
      matmul_rows(ks, view, act, 0, n_out, out.data(), n_out);
      ++reps;
    } while (now() - t0 < 0.2);
    rate = std::max(rate, double(w.size()) * reps / (now() - t0) / 1e9);
  }
  return rate;
}

// A prefill-sized batch: kBatchTokens tokens x kBatchRows rows of the matrix, one thread, best
// of a few passes, in ms: over the GGUF rows (k = 0) and packed (k = 1, when the path packs it).
constexpr int kBatchTokens = 128;
constexpr int64_t kBatchRows = 896;
void batch_ms(const KernelSet& ks, TensorType t, const std::vector<uint8_t>& w, int64_t n_in,
              const PreparedActivations& act, double ms[2]) {
  std::vector<float> out(size_t(kBatchRows) * kBatchTokens);
  std::vector<uint8_t> p;
  ms[0] = ms[1] = 0;
  if (packs(ks, t)) {
    p.resize(packed_bytes(t, n_in, kBatchRows));
    repack(t, w.data(), n_in, kBatchRows, p.data());
  }
  for (int k = 0; k < (p.empty() ? 1 : 2); ++k) {
    const WeightView view{t, k ? p.data() : w.data(), n_in, kBatchRows, row_size(t, n_in),
                          k ? WeightLayout::Packed8 : WeightLayout::Rows};
    double best = 1e9;
    for (int pass = 0; pass < 8; ++pass) {
      const double t0 = now();
      matmul_rows(ks, view, act, 0, kBatchRows, out.data(), kBatchRows);
      best = std::min(best, now() - t0);
    }
    ms[k] = best * 1e3;
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
  std::vector<float> xb(size_t(n_in) * kBatchTokens);
  for (float& v : xb) v = dist(rng);
  std::printf("path %s, one thread, n_in %lld, GB/s of weights (matmul_rows; one vec_dot per row; matmul_rows over\n"
              "the repacked copy where the path packs the type); and a %d-token batch over %lld rows, ms (GGUF rows, packed)\n"
              "| type | cached | cached, vec_dot | streamed | streamed, vec_dot | packed cached | packed streamed "
              "| batch | batch packed |\n|---|---|---|---|---|---|---|---|---|\n",
              ks->name, (long long)n_in, kBatchTokens, (long long)kBatchRows);
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
    double rate[2][2], packed[2] = {0, 0}, batch[2];
    const bool pk = packs(*ks, t);
    for (int k = 0; k < 2; ++k) {
      // Whole row groups, so the packed copy covers the same rows.
      const int64_t n_out = (k == 0 ? int64_t(256 * 1024 / rb) : int64_t((64 << 20) / rb)) / kPackRows * kPackRows;
      std::vector<uint8_t> w(rb * size_t(n_out));
      for (int64_t r = 0; r < n_out; ++r) std::memcpy(w.data() + size_t(r) * rb, one.data(), rb);
      std::vector<float> out(static_cast<size_t>(n_out));
      gemv_rates(*ks, t, w, n_in, n_out, act, out, rate[k]);
      if (pk) packed[k] = packed_rate(*ks, t, w, n_in, n_out, act, out);
      if (k == 1) {
        PreparedActivations actb;
        prepare_activations(*ks, t, xb.data(), n_in, kBatchTokens, n_in, actb);
        batch_ms(*ks, t, w, n_in, actb, batch);
      }
    }
    if (pk)
      std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", name.c_str(), rate[0][0], rate[0][1],
                  rate[1][0], rate[1][1], packed[0], packed[1], batch[0], batch[1]);
    else
      std::printf("| %s | %.1f | %.1f | %.1f | %.1f | - | - | %.2f | - |\n", name.c_str(), rate[0][0], rate[0][1],
                  rate[1][0], rate[1][1], batch[0]);
    char line[400];
    std::snprintf(line, sizeof line,
                  "%s{\"type\":\"%s\",\"cachedGBs\":%.2f,\"cachedVecDotGBs\":%.2f,\"streamedGBs\":%.2f,"
                  "\"streamedVecDotGBs\":%.2f,\"packedCachedGBs\":%.2f,\"packedStreamedGBs\":%.2f,"
                  "\"batchMs\":%.3f,\"batchPackedMs\":%.3f}",
                  json.empty() ? "" : ",", name.c_str(), rate[0][0], rate[0][1], rate[1][0], rate[1][1], packed[0],
                  packed[1], batch[0], batch[1]);
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
