// Private to kernels/: walks an nr x nt block of a matmul in register tiles of at most
// MR rows x MT tokens, calling Micro<R, T>::run(args, r, t) with the largest R <= MR and
// T <= MT that fit what is left, so edges need no scalar fallback. Header-only with
// internal linkage: each ISA's translation unit instantiates its own copy.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "matmul.h"

namespace el::kernels {
namespace {

// One call of a tile kernel (kernels.h TileDotFn): rows of w, ws bytes apart, against tokens
// t0.. of act, results at out[t * os + r].
struct TileArgs {
  int n;
  const uint8_t* w;
  size_t ws;
  const PreparedActivations* act;
  int t0;
  float* out;
  int64_t os;
};

// The operands of one register tile: R weight rows from r0 (as W), and for T tokens from
// tt their prepared activation rows (as A) and float side rows (f, see PreparedActivations).
// A tile's rows are R short streams (one row each) that hardware prefetchers pick up late,
// while the R rows after them are contiguous: prefetch_next fetches those while these compute.
template <class W, class A, int R, int T>
struct TileOperands {
  const W* w[R];
  const A* a[T];
  const float* f[T];
  const char* next;
  TileOperands(const TileArgs& g, int r0, int tt) {
    for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const W*>(g.w + size_t(r0 + r) * g.ws);
    for (int t = 0; t < T; ++t) {
      a[t] = static_cast<const A*>(g.act->row(g.t0 + tt + t));
      f[t] = g.act->f32_row(g.t0 + tt + t);
    }
    next = reinterpret_cast<const char*>(w[0]) + R * g.ws;
  }
  // Having read bytes [done, done + step) of each row, fetch the same share of the next R rows.
  void prefetch_next(size_t done, size_t step) const {
    for (size_t q = 0; q < R * step; q += 64) __builtin_prefetch(next + R * done + q);
  }
};

template <template <int, int> class Micro, int R, int T, class Args>
inline void run_micro(const Args& g, int r, int t, int cr, int ct) {
  if constexpr (T > 1) {
    if (ct < T) return run_micro<Micro, R, T - 1>(g, r, t, cr, ct);
  }
  if constexpr (R > 1) {
    if (cr < R) return run_micro<Micro, R - 1, T>(g, r, t, cr, ct);
  }
  Micro<R, T>::run(g, r, t);
}

// Tokens outer, rows inner: the MT activation rows stay in cache while the rows stream by.
template <template <int, int> class Micro, int MR, int MT, class Args>
inline void run_tiles(const Args& g, int nr, int nt) {
  for (int t = 0; t < nt; t += MT)
    for (int r = 0; r < nr; r += MR) run_micro<Micro, MR, MT>(g, r, t, std::min(MR, nr - r), std::min(MT, nt - t));
}

// A TileDotFn over register tiles Micro<R <= MR, T <= MT>.
template <template <int, int> class Micro, int MR, int MT>
void tile_entry(int n, const uint8_t* w, size_t ws, int nr, const PreparedActivations& act, int t0, int nt,
                float* out, int64_t os) {
  run_tiles<Micro, MR, MT>(TileArgs{n, w, ws, &act, t0, out, os}, nr, nt);
}

}  // namespace
}  // namespace el::kernels
