// LoRA kernels against the memory system (`npm run bench:kernels`; a benchmark, not a test).
//
// In a batched step with a different adapter per sequence, every LoRA kernel call reads one
// short stream from DRAM: one token's A for one projection (shrink), or its B over a thread's
// slice of the rows (expand), 2 to 90 KiB at a rank of 16. This measures, on one thread, how
// fast such streams are read at scattered places of a large buffer: by a plain read, and by
// each LoRA kernel of the chosen path (one token, rank 16), per stream size; and each kernel
// on one stream that stays in cache, its compute ceiling. A kernel that reads as fast as the
// plain read is bound by the memory system; one well under it, by its own instructions.
//
// Usage: bench_lora_streams [--path NAME] [--mib N] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "big_buffer.h"
#include "kernels/kernels.h"
#include "tensor_types.h"

using namespace el;
using namespace el::kernels;

namespace {

constexpr int kRank = 16;
constexpr int kPasses = 3;  // best of: other tenants of a shared machine come and go

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A large buffer from the allocator the slot pool uses (2 MiB aligned, huge pages asked for).
struct Buffer {
  BigBuffer mem;
  uint8_t* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : mem(try_alloc_big(bytes, HugePages::Ask)), p(mem.get()), n(bytes) {
    if (!p) {
      std::fprintf(stderr, "bench_lora_streams: cannot allocate %zu MiB\n", bytes >> 20);
      std::exit(1);
    }
    // 0x3c: as int8 60, as fp16 (0x3c3c) 1.06: finite values for every kernel.
    std::memset(p, 0x3c, bytes);
  }
};

// The plain read: 64-bit words summed in four chains (the compiler vectorizes it).
uint64_t read_stream(const uint8_t* p, size_t bytes) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    s0 += w[i];
    s1 += w[i + 1];
    s2 += w[i + 2];
    s3 += w[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// One kernel over one stream: the call shape of a batched step with a single token.
struct Op {
  const char* name;
  // Bytes the kernel reads from a stream of at most `budget` bytes, and the call on it.
  int64_t (*bytes)(int64_t budget);
  void (*run)(const KernelSet& ks, const uint8_t* stream, int64_t budget);
};

// Scratch for the kernels' small operands (activations, t, outputs); every call rewrites it.
struct Scratch {
  std::vector<block_q8_0> xq;
  std::vector<float> x, t, y;
  std::vector<int8_t> tq;
  Scratch() : xq(1 << 16), x(1 << 20, 0.01f), t(kRank, 0.5f), y(1 << 20), tq(kRank, 3) {
    for (auto& b : xq) {
      b.d = fp32_to_fp16(0.01f);
      std::memset(b.qs, 5, sizeof b.qs);
    }
  }
};
Scratch* g_scratch = nullptr;
volatile uint64_t g_sink = 0;

int64_t q8_shrink_inputs(int64_t budget) {
  return std::max<int64_t>(1, budget / lora_q8_a_bytes(kLoraQ8Block, kRank)) * kLoraQ8Block;
}
int64_t q8_expand_outputs(int64_t budget) {
  return std::max<int64_t>(1, budget / lora_q8_b_bytes(kLoraOutChunk, kRank)) * kLoraOutChunk;
}
int64_t f16_shrink_inputs(int64_t budget) { return std::max<int64_t>(1, budget / (2 * kRank)); }
int64_t f16_expand_outputs(int64_t budget) {
  return std::max<int64_t>(1, budget / (2 * kRank * kLoraOutChunk)) * kLoraOutChunk;
}

const Op kOps[] = {
    {"read", [](int64_t budget) { return budget / 32 * 32; },
     [](const KernelSet&, const uint8_t* s, int64_t budget) { g_sink = g_sink + read_stream(s, size_t(budget / 32 * 32)); }},
    {"q8 shrink", [](int64_t budget) { return lora_q8_a_bytes(q8_shrink_inputs(budget), kRank); },
     [](const KernelSet& ks, const uint8_t* s, int64_t budget) {
       const block_q8_0* x = g_scratch->xq.data();
       const float coeff = 1.0f;
       float* t = g_scratch->t.data();
       ks.lora_shrink_q8(int(q8_shrink_inputs(budget)), kRank, s, 1, &x, &coeff, &t);
     }},
    {"q8 expand", [](int64_t budget) { return lora_q8_b_bytes(q8_expand_outputs(budget), kRank); },
     [](const KernelSet& ks, const uint8_t* s, int64_t budget) {
       const int8_t* tq = g_scratch->tq.data();
       const float td = 0.01f;
       float* y = g_scratch->y.data();
       ks.lora_expand_q8(0, q8_expand_outputs(budget), kRank, &s, 1, &tq, &td, &y);
     }},
    {"f16 shrink", [](int64_t budget) { return f16_shrink_inputs(budget) * 2 * kRank; },
     [](const KernelSet& ks, const uint8_t* s, int64_t budget) {
       const float* x = g_scratch->x.data();
       const float coeff = 1.0f;
       float* t = g_scratch->t.data();
       ks.lora_shrink_f16(int(f16_shrink_inputs(budget)), kRank, reinterpret_cast<const fp16_t*>(s), 1, &x, &coeff,
                          &t);
     }},
    {"f16 expand", [](int64_t budget) { return f16_expand_outputs(budget) * 2 * kRank; },
     [](const KernelSet& ks, const uint8_t* s, int64_t budget) {
       const fp16_t* b = reinterpret_cast<const fp16_t*>(s);
       const float* t = g_scratch->t.data();
       float* y = g_scratch->y.data();
       ks.lora_expand_f16(0, f16_expand_outputs(budget), kRank, &b, 1, &t, &y);
     }},
};
constexpr int kNumOps = int(sizeof kOps / sizeof kOps[0]);

// GB/s of `op` over streams of `budget` bytes, each at a scattered place of `buf` (a stride
// coprime with the count visits every slot once); best of kPasses, a cold pass between.
double scattered(const KernelSet& ks, const Op& op, const Buffer& buf, const Buffer& flush, int64_t budget) {
  const int64_t slots = int64_t(buf.n) / budget;
  int64_t stride = 7919;
  while (slots % stride == 0) stride += 2;
  double best = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    g_sink = g_sink + read_stream(flush.p, flush.n);  // evict the buffer from every cache level
    const double t0 = now();
    for (int64_t i = 0; i < slots; ++i) op.run(ks, buf.p + (i * stride % slots) * budget, budget);
    best = std::max(best, double(slots) * double(op.bytes(budget)) / (now() - t0) / 1e9);
  }
  return best;
}

// GB/s of `op` on one stream of `budget` bytes that stays in cache.
double hot(const KernelSet& ks, const Op& op, const Buffer& buf, int64_t budget) {
  const int reps = int(std::max<int64_t>(200, (int64_t(1) << 31) / std::max<int64_t>(1, op.bytes(budget))) / 4);
  double best = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    const double t0 = now();
    for (int i = 0; i < reps; ++i) op.run(ks, buf.p, budget);
    best = std::max(best, double(reps) * double(op.bytes(budget)) / (now() - t0) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = nullptr;
  const char* json = nullptr;
  int64_t mib = 256;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--path" && i + 1 < argc) path = argv[++i];
    else if (a == "--mib" && i + 1 < argc) mib = std::atoll(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_lora_streams [--path NAME] [--mib N] [--json FILE]\n");
      return 2;
    }
  }
  if (mib < 64) {
    std::fprintf(stderr, "bench_lora_streams: --mib must be at least 64 (well past the last-level cache)\n");
    return 2;
  }
  FILE* out = nullptr;  // opened first: a bad path fails before the minutes of measuring
  if (json && !(out = std::fopen(json, "w"))) {
    std::fprintf(stderr, "bench_lora_streams: cannot write %s\n", json);
    return 1;
  }
  const KernelSet* ks = path ? by_name(path) : &best();
  if (!ks) {
    std::fprintf(stderr, "bench_lora_streams: kernel path '%s' is not available on this CPU\n", path);
    return 2;
  }
  Scratch scratch;
  g_scratch = &scratch;
  const Buffer buf(size_t(mib) << 20), flush(size_t(mib) << 20);
  const int64_t sizes_kib[] = {2, 4, 8, 16, 32, 64, 256, 1024};
  constexpr int64_t kHotKib = 16;

  std::printf("LoRA kernels (%s path, rank %d, one token, one thread) reading streams at scattered places of %lld MiB\n",
              ks->name, kRank, static_cast<long long>(mib));
  std::printf("GB/s, best of %d passes; \"hot\": one %lld KiB stream kept in cache (the kernel's compute ceiling)\n",
              kPasses, static_cast<long long>(kHotKib));
  std::printf("| stream KiB |");
  for (const Op& op : kOps) std::printf(" %10s |", op.name);
  std::printf("\n|------------|");
  for (int i = 0; i < kNumOps; ++i) std::printf("------------|");
  std::printf("\n");
  std::string rows_json;
  for (int64_t kib : sizes_kib) {
    std::printf("| %10lld |", static_cast<long long>(kib));
    rows_json += (rows_json.empty() ? "" : ",") + std::string("{\"stream_kib\":") + std::to_string(kib);
    for (const Op& op : kOps) {
      const double g = scattered(*ks, op, buf, flush, kib << 10);
      std::printf(" %10.1f |", g);
      rows_json += ",\"" + std::string(op.name) + "\":" + std::to_string(g);
    }
    rows_json += "}";
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("| hot %6lld |", static_cast<long long>(kHotKib));
  std::string hot_json;
  for (const Op& op : kOps) {
    const double g = hot(*ks, op, buf, kHotKib << 10);
    std::printf(" %10.1f |", g);
    hot_json += (hot_json.empty() ? "" : ",") + std::string("\"") + op.name + "\":" + std::to_string(g);
  }
  std::printf("\n");
  if (out) {
    std::fprintf(out,
                 "{\"path\":\"%s\",\"rank\":%d,\"buffer_mib\":%lld,\"passes\":%d,\"unit\":\"GB/s\","
                 "\"scattered\":[%s],\"hot\":{\"stream_kib\":%lld,%s}}\n",
                 ks->name, kRank, static_cast<long long>(mib), kPasses, rows_json.c_str(),
                 static_cast<long long>(kHotKib), hot_json.c_str());
    std::fclose(out);
    std::printf("wrote %s\n", json);
  }
  return 0;
}
