// Path selection: which kernel tables this binary has, which this CPU can run, and the
// one chosen for the process (best CPU path unless EDGELORA_KERNELS names another).
#include <cstdlib>
#include <cstring>

#include "paths.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace el::kernels {
namespace {

struct Path {
  const char* name;
  bool (*supported)();
  void (*install)(KernelSet&, detail::TileKernels&);  // applied, in order, on top of the scalar table
  void (*install2)(KernelSet&, detail::TileKernels&);
  void (*install_packed)(detail::PackedKernels&);  // kernels for Packed8 weights, or null
};

#if defined(__x86_64__)
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
// AVX-VNNI (VEX vpdpbusd): CPUID leaf 7 subleaf 1, EAX bit 4. Read directly because gcc 12's
// __builtin_cpu_supports("avxvnni") reports false on CPUs that have it.
bool cpu_has_avx2_vnni() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return cpu_has_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
}
// AVX-512 with VNNI (Ice Lake, Zen 4, Zen 5, Sapphire Rapids). __builtin_cpu_supports also
// checks that the OS saves the 512-bit registers.
bool cpu_has_avx512_vnni() {
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(__aarch64__)
bool cpu_has_neon() { return true; }  // Advanced SIMD is mandatory on AArch64
bool cpu_has_dotprod() {
#if defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}
#endif

// Best first; scalar is always available and handled separately.
const Path kPaths[] = {
#if defined(__x86_64__)
    // Only the packed matmuls use 512-bit registers; the rest is the AVX-VNNI table, EVEX-encoded.
    {"avx512-vnni", cpu_has_avx512_vnni, detail::install_avx2, detail::install_avx512_vnni,
     detail::install_packed_avx512},
    {"avx2-vnni", cpu_has_avx2_vnni, detail::install_avx2, detail::install_avx2_vnni, detail::install_packed_vnni},
    {"avx2", cpu_has_avx2, detail::install_avx2, nullptr, detail::install_packed_avx2},
#endif
#if defined(__aarch64__)
    {"neon-dotprod", cpu_has_dotprod, detail::install_neon, detail::install_neon_dotprod,
     detail::install_packed_neon_dotprod},
    {"neon", cpu_has_neon, detail::install_neon, nullptr, nullptr},
#endif
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
constexpr int kNumPaths = int(sizeof(kPaths) / sizeof(kPaths[0])) - 1;

struct Entry {
  KernelSet ks;
  detail::TileKernels tiles;
  detail::PackedKernels packed;
};

Entry build(const Path* p) {
  Entry e;
  detail::fill_scalar(e.ks);
  if (p) {
    p->install(e.ks, e.tiles);
    if (p->install2) p->install2(e.ks, e.tiles);
    if (p->install_packed) p->install_packed(e.packed);
    e.ks.name = p->name;
  }
  return e;
}

// Tables are built once, on first use; index kNumPaths is scalar.
const Entry* entries() {
  static const struct Tables {
    Entry e[kNumPaths + 1];
    Tables() {
      for (int k = 0; k < kNumPaths; ++k) e[k] = build(&kPaths[k]);
      e[kNumPaths] = build(nullptr);
    }
  } tables;
  return tables.e;
}

const KernelSet& table(int i) { return entries()[i].ks; }

// The entry a KernelSet belongs to (null for a table dispatch.cpp did not build).
const Entry* entry_of(const KernelSet& ks) {
  for (int k = 0; k <= kNumPaths; ++k)
    if (&ks == &entries()[k].ks) return &entries()[k];
  return nullptr;
}

}  // namespace

const KernelSet& scalar() { return table(kNumPaths); }

const detail::TileKernels& detail::tiles(const KernelSet& ks) {
  static const TileKernels none;
  const Entry* e = entry_of(ks);
  return e ? e->tiles : none;
}

const detail::PackedKernels& detail::packed(const KernelSet& ks) {
  static const PackedKernels none;
  const Entry* e = entry_of(ks);
  return e ? e->packed : none;
}

bool packs(const KernelSet& ks, TensorType t) { return detail::packed(ks).by_type[static_cast<uint32_t>(t)] != nullptr; }

const KernelSet* by_name(const char* name) {
  if (!name) return nullptr;
  if (std::strcmp(name, "scalar") == 0) return &scalar();
  for (int k = 0; k < kNumPaths; ++k)
    if (std::strcmp(name, kPaths[k].name) == 0) return kPaths[k].supported() ? &table(k) : nullptr;
  return nullptr;
}

std::vector<const KernelSet*> available() {
  std::vector<const KernelSet*> out{&scalar()};
  for (int k = 0; k < kNumPaths; ++k)
    if (kPaths[k].supported()) out.push_back(&table(k));
  return out;
}

const KernelSet& best() {
  static const KernelSet* chosen = [] {
    // An unknown or unsupported override falls back to detection rather than failing.
    if (const KernelSet* forced = by_name(std::getenv("EDGELORA_KERNELS"))) return forced;
    for (int k = 0; k < kNumPaths; ++k)
      if (kPaths[k].supported()) return &table(k);
    return &scalar();
  }();
  return *chosen;
}

}  // namespace el::kernels
