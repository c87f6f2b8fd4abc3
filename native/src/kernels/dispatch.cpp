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

using Installer = void (*)(KernelSet&);
constexpr int kMaxInstallers = 3;

struct Path {
  const char* name;
  bool (*supported)();
  Installer install[kMaxInstallers];  // applied, in order, on top of the scalar table
};

#if defined(__x86_64__)
// Features read from CPUID directly (gcc's and clang's __builtin_cpu_supports know different
// names, and gcc 12's misses AVX-VNNI); XGETBV says whether the OS saves the registers.
struct X86Features {
  bool avx2 = false, avx_vnni = false, avx512_vnni = false;
  X86Features() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx) return;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool os_ymm = (xcr0_lo & 0x6) == 0x6;                // SSE and AVX state
    const bool os_zmm = os_ymm && (xcr0_lo & 0xE0) == 0xE0;    // opmask, ZMM 0-15 upper halves, ZMM 16-31
    if (!os_ymm || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    avx2 = fma && f16c && (b & (1u << 5));
    const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));  // F DQ BW VL
    avx512_vnni = avx2 && os_zmm && avx512 && (c & (1u << 11));
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    avx_vnni = avx2 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && (a1 & (1u << 4));  // leaf 7.1 EAX bit 4
  }
};
const X86Features& x86() {
  static const X86Features f;
  return f;
}
bool cpu_has_avx2() { return x86().avx2; }
// AVX-VNNI (VEX vpdpbusd: Alder Lake / N100, Zen 5).
bool cpu_has_avx2_vnni() { return x86().avx_vnni; }
// AVX-512 F/BW/VL/DQ with VNNI (Ice Lake, Zen 4, Zen 5, Sapphire Rapids).
bool cpu_has_avx512_vnni() { return x86().avx512_vnni; }
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
    {"avx512-vnni", cpu_has_avx512_vnni,
     {detail::install_avx2, detail::install_avx512_vnni, detail::install_packed_avx512}},
    {"avx2-vnni", cpu_has_avx2_vnni, {detail::install_avx2, detail::install_avx2_vnni, detail::install_packed_vnni}},
    {"avx2", cpu_has_avx2, {detail::install_avx2, detail::install_packed_avx2}},
#endif
#if defined(__aarch64__)
    {"neon-dotprod", cpu_has_dotprod,
     {detail::install_neon, detail::install_neon_dotprod, detail::install_packed_neon_dotprod}},
    {"neon", cpu_has_neon, {detail::install_neon}},
#endif
    {nullptr, nullptr, {}},
};
constexpr int kNumPaths = int(sizeof(kPaths) / sizeof(kPaths[0])) - 1;

KernelSet build(const Path* p) {
  KernelSet ks;
  detail::fill_scalar(ks);
  if (p) {
    for (Installer install : p->install)
      if (install) install(ks);
    ks.name = p->name;
  }
  return ks;
}

// Tables are built once, on first use; index kNumPaths is scalar.
const KernelSet* tables() {
  static const struct Tables {
    KernelSet ks[kNumPaths + 1];
    Tables() {
      for (int k = 0; k < kNumPaths; ++k) ks[k] = build(&kPaths[k]);
      ks[kNumPaths] = build(nullptr);
    }
  } tables;
  return tables.ks;
}

const KernelSet& table(int i) { return tables()[i]; }

}  // namespace

const KernelSet& scalar() { return table(kNumPaths); }

bool packs(const KernelSet& ks, TensorType t) { return ks.of(t).packed != nullptr; }

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
