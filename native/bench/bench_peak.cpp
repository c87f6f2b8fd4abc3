// The physical compute limit of this CPU and how close the engine's batched GEMM comes to it
// (a benchmark, not a test).
//
// Peaks, register-resident (no memory), 1 and 2 threads: 512-bit vpdpbusd (the Packed8
// kernels' multiply: 64 u8 x s8 multiply-adds), the same with its activation operand a 4-byte
// broadcast from L1 (the kernels' inner mix: one broadcast load per vpdpbusd), 256-bit vpdpbusd,
// and 512-bit / 256-bit F32 FMA. Each thread runs independent accumulator chains, so the figure
// is issue throughput, not latency. Two threads at twice one thread's rate mean two physical
// cores; at one thread's rate, SMT siblings.
//
// The engine's GEMM: the projections of one layer of the bench model's shape (896 x 24 layers,
// ffn 4864, 2 KV heads of 64: q, k, v, o, gate, up, down) as Q4_0 Packed8 weights, 8 distinct
// layers (67 MB, more than the L3) cycled so that weights come from memory as in a forward
// pass, through prepare_activations + matmul_rows over 16-row items on the engine's ThreadPool
// (as Context::project splits them); for 1 (decode GEMV), 8, 16, 32 tokens (decode batches)
// and 64, 128 (prefill chunks). Reported as GOP/s (2 per multiply-add), wall and per CPU second
// (the process's CPU time: what CPU seconds per 1,000 tokens count), and as a share of one
// core's 512-bit vpdpbusd peak.
//
// Usage: bench_peak [--paths NAME,NAME] (alternated per row) [--layers N] [--tokens 1,8,16,32,64,128] [--threads 1,2] [--json FILE]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "tensor_types.h"
#include "threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace el;
using namespace el::kernels;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<int> int_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

// ---- register-resident peaks ------------------------------------------------------------------

constexpr int kChains = 24;  // independent accumulators per thread (> latency x issue width)
constexpr int64_t kIters = 1 << 20;  // loop trips per timed call

#if defined(__x86_64__)
// Inline assembly, so that the compiler can neither spill the accumulators (it did: loops
// interchanged, accumulators through memory) nor drop or fuse instructions. Each loop trip runs
// one instruction on each of the kChains accumulators zmm8 .. zmm31 (ymm8 .. ymm31 for the
// 256-bit forms, EVEX-encoded as the engine's 256-bit kernels are on this path), operands in
// zmm0 / zmm1 or, for the broadcast form, 4 bytes at 4(%[x]) of a small L1-resident array.
#define EL_R8_31(OP, SRC, W) \
  EL_R(OP, SRC, W, 8) EL_R(OP, SRC, W, 9) EL_R(OP, SRC, W, 10) EL_R(OP, SRC, W, 11) EL_R(OP, SRC, W, 12) \
  EL_R(OP, SRC, W, 13) EL_R(OP, SRC, W, 14) EL_R(OP, SRC, W, 15) EL_R(OP, SRC, W, 16) EL_R(OP, SRC, W, 17) \
  EL_R(OP, SRC, W, 18) EL_R(OP, SRC, W, 19) EL_R(OP, SRC, W, 20) EL_R(OP, SRC, W, 21) EL_R(OP, SRC, W, 22) \
  EL_R(OP, SRC, W, 23) EL_R(OP, SRC, W, 24) EL_R(OP, SRC, W, 25) EL_R(OP, SRC, W, 26) EL_R(OP, SRC, W, 27) \
  EL_R(OP, SRC, W, 28) EL_R(OP, SRC, W, 29) EL_R(OP, SRC, W, 30) EL_R(OP, SRC, W, 31)
#define EL_R(OP, SRC, W, N) OP " " SRC ", %%" #W "0, %%" #W #N "\n\t"
#define EL_CLOBBER_8_31                                                                                          \
  "xmm0", "xmm1", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", \
      "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",  \
      "xmm31", "cc"
#define EL_TARGET_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

alignas(64) const int32_t kBcast[64] = {0x01010101};

EL_TARGET_512 void dpbusd_zmm(int64_t iters) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "1:\n\t" EL_R8_31("vpdpbusd", "%%zmm1", zmm) "dec %[n]\n\tjnz 1b"
      : [n] "+r"(iters)
      :
      : EL_CLOBBER_8_31);
}

EL_TARGET_512 void dpbusd_zmm_bcast(int64_t iters) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "1:\n\t" EL_R8_31("vpdpbusd", "4(%[x])%{1to16%}", zmm) "dec %[n]\n\tjnz 1b"
      : [n] "+r"(iters)
      : [x] "r"(kBcast)
      : EL_CLOBBER_8_31);
}

EL_TARGET_512 void dpbusd_ymm(int64_t iters) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "1:\n\t" EL_R8_31("vpdpbusd", "%%ymm1", ymm) "dec %[n]\n\tjnz 1b"
      : [n] "+r"(iters)
      :
      : EL_CLOBBER_8_31);
}

EL_TARGET_512 void fma_zmm(int64_t iters) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "1:\n\t" EL_R8_31("vfmadd231ps", "%%zmm1", zmm) "dec %[n]\n\tjnz 1b"
      : [n] "+r"(iters)
      :
      : EL_CLOBBER_8_31);
}

EL_TARGET_512 void fma_ymm(int64_t iters) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "1:\n\t" EL_R8_31("vfmadd231ps", "%%ymm1", ymm) "dec %[n]\n\tjnz 1b"
      : [n] "+r"(iters)
      :
      : EL_CLOBBER_8_31);
}
#endif

struct Peak {
  const char* name;
  const char* path;  // the kernel path whose CPU check covers the instruction
  void (*fn)(int64_t iters);
  int64_t macs_per_trip;  // multiply-adds of one loop trip
};

// The CPU clock of the calling thread / of the process: on a shared machine a thread's rate
// per CPU second is its core's rate, whatever share of the wall clock it got.
double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
double process_cpu() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Multiply-adds per second over `threads` threads running fn at once for about 0.3 s each,
// best of 3: per wall second (all threads together) and per CPU second (one core's rate).
struct Rate {
  double wall = 0, per_cpu = 0;
};
Rate peak_rate(const Peak& p, int threads) {
  Rate best;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<int64_t> macs{0};
    std::atomic<int> ready{0};
    std::vector<double> cpu(size_t(threads), 0);
    std::vector<std::thread> ts;
    const double t0 = now();
    for (int i = 0; i < threads; ++i)
      ts.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < threads) {
        }
        int64_t m = 0;
        const double start = now(), c0 = thread_cpu();
        do {
          p.fn(kIters / 8);
          m += kIters / 8 * p.macs_per_trip;
        } while (now() - start < 0.3);
        cpu[size_t(i)] = thread_cpu() - c0;
        macs.fetch_add(m);
      });
    for (auto& t : ts) t.join();
    double cpu_sum = 0;
    for (double c : cpu) cpu_sum += c;
    best.wall = std::max(best.wall, double(macs.load()) / (now() - t0));
    best.per_cpu = std::max(best.per_cpu, double(macs.load()) / cpu_sum);
  }
  return best;
}

// ---- the engine's GEMM ------------------------------------------------------------------------

struct Shape {
  const char* name;
  int64_t n_in, n_out;
};
// One layer of the bench model (scripts/lib/bench-model.ts): 896 wide, 14 heads / 2 KV heads of
// 64, ffn 4864.
const Shape kLayer[] = {{"q", 896, 896},    {"k", 896, 128},    {"v", 896, 128},   {"o", 896, 896},
                        {"gate", 896, 4864}, {"up", 896, 4864}, {"down", 4864, 896}};
int kLayers = 8;  // --layers: 1 keeps one layer (8.4 MB) in the L3
constexpr int kRowAlign = 16;  // rows per work item, as model_forward.cpp

struct PackedWeight {
  std::vector<uint8_t> bytes;
  WeightView view;
};

PackedWeight random_q4_0(std::mt19937& rng, int64_t n_in, int64_t n_out) {
  const size_t rb = row_size(TensorType::Q4_0, n_in);
  std::vector<uint8_t> rows(rb * size_t(n_out));
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t r = 0; r < size_t(n_out); ++r) {
    auto* b = reinterpret_cast<block_q4_0*>(rows.data() + r * rb);
    for (int64_t i = 0; i < n_in / QK4_0; ++i) {
      b[i].d = fp32_to_fp16(0.01f + 0.001f * float(byte(rng) % 7));
      for (auto& q : b[i].qs) q = uint8_t(byte(rng));
    }
  }
  PackedWeight w;
  w.bytes.resize(rows.size());
  repack(TensorType::Q4_0, rows.data(), n_in, n_out, w.bytes.data());
  w.view = WeightView{TensorType::Q4_0, w.bytes.data(), n_in, n_out, rb, WeightLayout::Packed8};
  return w;
}

// Seconds per layer (all 7 projections: activations prepared, rows split over the pool) for
// `tokens` tokens, wall and process CPU (every thread, the pool's waits included), each the
// best of a few passes over the kLayers layers.
Rate layer_seconds(const KernelSet& ks, ThreadPool& pool, int threads, const std::vector<PackedWeight>& ws, int tokens) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(size_t(tokens) * 4864), out(size_t(tokens) * 4864);
  for (float& v : x) v = dist(rng);
  PreparedActivations act;
  const int per_layer = int(std::size(kLayer));
  Rate best{1e30, 1e30};
  for (int pass = 0; pass < 5; ++pass) {
    const double t0 = now(), c0 = process_cpu();
    int layers = 0;
    do {
      for (int l = 0; l < kLayers; ++l, ++layers)
        for (int p = 0; p < per_layer; ++p) {
          const WeightView& w = ws[size_t(l * per_layer + p)].view;
          prepare_activations(ks, w.type, x.data(), w.n_in, tokens, w.n_in, act);
          const int64_t items = (w.n_out + kRowAlign - 1) / kRowAlign;
          pool.parallel_for(threads, items, 1, [&](int64_t i0, int64_t i1, int) {
            matmul_rows(ks, w, act, i0 * kRowAlign, std::min(w.n_out, i1 * kRowAlign), out.data(), w.n_out);
          });
        }
    } while (now() - t0 < 0.25);
    best.wall = std::min(best.wall, (now() - t0) / layers);
    best.per_cpu = std::min(best.per_cpu, (process_cpu() - c0) / layers);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const KernelSet*> kss = {&best()};
  std::vector<int> tokens = {1, 8, 16, 32, 64, 128}, threads = {1, 2};
  const char* json_path = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--paths") == 0) {
      kss.clear();
      for (const char* p = argv[i + 1]; *p;) {
        const char* e = std::strchr(p, ',');
        const std::string name = e ? std::string(p, e) : std::string(p);
        kss.push_back(by_name(name.c_str()));
        p = e ? e + 1 : p + name.size();
      }
    }
    if (std::strcmp(argv[i], "--tokens") == 0) tokens = int_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0) threads = int_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--json") == 0) json_path = argv[i + 1];
    if (std::strcmp(argv[i], "--layers") == 0) kLayers = std::max(1, std::atoi(argv[i + 1]));
  }
  if (kss.empty() || std::find(kss.begin(), kss.end(), nullptr) != kss.end()) {
    std::fprintf(stderr, "unknown or unsupported path in --paths\n");
    return 1;
  }
  std::string json = "{\"peaks\":[";

#if defined(__x86_64__)
  const Peak peaks[] = {{"vpdpbusd zmm (u8 x s8, 64 MAC)", "avx512-vnni", dpbusd_zmm, 24 * 64},
                        {"vpdpbusd zmm, broadcast load", "avx512-vnni", dpbusd_zmm_bcast, 24 * 64},
                        {"vpdpbusd ymm (32 MAC)", "avx512-vnni", dpbusd_ymm, 24 * 32},
                        {"vfmadd zmm (F32, 16 MAC)", "avx512-vnni", fma_zmm, 24 * 16},
                        {"vfmadd ymm (F32, 8 MAC)", "avx512-vnni", fma_ymm, 24 * 8}};
#else
  std::fprintf(stderr, "bench_peak: the register peaks are x86 only (the GEMM rows follow, without a share of a peak)\n");
#endif
  double int8_core_peak = 0;  // 512-bit vpdpbusd, one thread, per CPU second
  std::printf("register-resident peaks, GOP/s (2 operations per multiply-add): per wall second (all threads), and per "
              "CPU second (one core's rate, whatever share of the machine the threads got)\n"
              "| instruction | threads | GOP/s wall | GOP/s per core (CPU time) |\n|---|---|---|---|\n");
#if defined(__x86_64__)
  bool first = true;
  for (const Peak& p : peaks) {
    if (!by_name(p.path)) continue;
    for (int th : threads) {
      const Rate r = peak_rate(p, th);
      if (p.fn == dpbusd_zmm && th == 1) int8_core_peak = 2 * r.per_cpu;
      std::printf("| %s | %d | %.0f | %.0f |\n", p.name, th, 2 * r.wall / 1e9, 2 * r.per_cpu / 1e9);
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s{\"instruction\":\"%s\",\"threads\":%d,\"gops_wall\":%.1f,\"gops_per_core\":%.1f}",
                    first ? "" : ",", p.name, th, 2 * r.wall / 1e9, 2 * r.per_cpu / 1e9);
      json += buf;
      first = false;
    }
  }
#endif
  json += "],\"gemm\":[";

  std::mt19937 rng(1);
  std::vector<PackedWeight> ws;
  double layer_macs = 0;
  for (int l = 0; l < kLayers; ++l)
    for (const Shape& s : kLayer) ws.push_back(random_q4_0(rng, s.n_in, s.n_out));
  for (const Shape& s : kLayer) layer_macs += double(s.n_in) * double(s.n_out);
  const int max_threads = *std::max_element(threads.begin(), threads.end());
  ThreadPool pool(max_threads);
  std::printf("\nengine GEMM: one bench-model layer (q k v o gate up down, Q4_0 Packed8, %.1f M MAC/token), %d distinct "
              "layers cycled (weights from memory); CPU = the process's CPU time (pool waits included); efficiency = "
              "GOP per CPU second / one core's vpdpbusd zmm peak (%.0f GOP/s)\n"
              "| path | tokens | threads | us/layer wall | GOP/s wall | GOP per CPU s | of core peak | CPU s / 1k tokens "
              "(24 layers) |\n|---|---|---|---|---|---|---|---|\n",
              layer_macs / 1e6, kLayers, int8_core_peak / 1e9);
  bool first_gemm = true;
  for (int nt : tokens)
    for (int th : threads)
      for (const KernelSet* k : kss) {
        const Rate r = layer_seconds(*k, pool, th, ws, nt);
        const double gops_wall = 2 * layer_macs * nt / r.wall / 1e9, gops_cpu = 2 * layer_macs * nt / r.per_cpu / 1e9;
        const double of_peak = int8_core_peak > 0 ? gops_cpu / (int8_core_peak / 1e9) : 0;
        const double cpu_per_1k = r.per_cpu * 24 / nt * 1000;
        std::printf("| %s | %d | %d | %.0f | %.0f | %.0f | %.0f%% | %.3f |\n", k->name, nt, th, r.wall * 1e6, gops_wall,
                    gops_cpu, 100 * of_peak, cpu_per_1k);
        char buf[320];
        std::snprintf(buf, sizeof buf,
                      "%s{\"path\":\"%s\",\"tokens\":%d,\"threads\":%d,\"us_per_layer\":%.1f,\"cpu_us_per_layer\":%.1f,"
                      "\"gops_wall\":%.1f,\"gops_per_cpu\":%.1f,\"of_core_peak\":%.3f,\"cpu_s_per_1k_tokens\":%.4f}",
                      first_gemm ? "" : ",", k->name, nt, th, r.wall * 1e6, r.per_cpu * 1e6, gops_wall, gops_cpu, of_peak,
                      cpu_per_1k);
        json += buf;
        first_gemm = false;
        std::fflush(stdout);
      }
  json += "]}\n";
  if (json_path) {
    if (FILE* f = std::fopen(json_path, "w")) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
      std::fprintf(stderr, "wrote %s\n", json_path);
    }
  }
  return 0;
}
