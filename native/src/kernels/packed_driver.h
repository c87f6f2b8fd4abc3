// Private to kernels/: the ISA-independent walk of a matmul over Packed8 weights (packed.h),
// shared by the x86 and ARM packed kernels. Tokens go in tiles of up to kPackTileTokens, outer
// (they stay in L1 while the row groups stream by); with one token this is the decode GEMV,
// one contiguous pass over the groups. Header-only with internal linkage: each translation
// unit compiles its own copy with its own ISA flags.
//
// An ISA supplies Groups: `using Block = ...;` (and `using Act = block_q8_1;` for Q4_1 / Q5_1,
// `using Act = block_q8_K;` for the K-quants of packed_k.h, whose blocks span 256 elements) and
//   template <int T> static void run(int nb, const Block* w, const PackedTokens<T, Act>& x, float* out, int64_t os)
// computing one row group (8 rows, nb blocks from w) x T tokens into out[t * os + r].
// Optionally (wide registers):
//   static constexpr int kGroups = G;       run computes G consecutive groups (8G rows; the
//                                           groups' blocks follow one another from w), and
//   using Tail = ...;                       a one-group Groups for the ng % G groups left,
//   static constexpr int kMinWideTokens = M; and for all groups of a tile under M tokens;
//   static constexpr int kTileTokens = T;   tokens per tile instead of kPackTileTokens.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "matmul.h"
#include "packed.h"

namespace el::kernels {
namespace {

// The tokens of one tile: their activation blocks A (Q8_0, or Q8_1 for Q4_1 / Q5_1), block
// scales, block quant sums and (Q8_1) the blocks' s = d x quant sum (matmul.h).
template <int T, class A = block_q8_0>
struct PackedTokens {
  const A* a[T];
  const float* d[T];
  const int32_t* s[T];
  const float* sd[T];
  PackedTokens(const PreparedActivations& act, int t0) {
    for (int t = 0; t < T; ++t) {
      a[t] = static_cast<const A*>(act.row(t0 + t));
      d[t] = act.f32_row(t0 + t);
      s[t] = act.qsum_row(t0 + t);
      sd[t] = d[t] + act.n_in / QK8_0;
    }
  }
};

// The K-quants' tokens (Q8_K): the blocks alone, which carry their scale and group sums.
template <int T>
struct PackedTokens<T, block_q8_K> {
  const block_q8_K* a[T];
  PackedTokens(const PreparedActivations& act, int t0) {
    for (int t = 0; t < T; ++t) a[t] = static_cast<const block_q8_K*>(act.row(t0 + t));
  }
};

// Groups::Act, the activation block (default Q8_0), and whether Groups' blocks carry mins
// (Q4_1 / Q5_1: Groups adds m x sd per block).
template <class G, class = void>
struct ActOf {
  using type = block_q8_0;
};
template <class G>
struct ActOf<G, std::void_t<typename G::Act>> {
  using type = typename G::Act;
};
template <class G>
using act_of = typename ActOf<G>::type;

constexpr int kPackTileTokens = 4;

// Groups::kGroups and Groups::kTileTokens, with their defaults (see above).
template <class G, class = void>
struct GroupsPerRun : std::integral_constant<int, 1> {};
template <class G>
struct GroupsPerRun<G, std::void_t<decltype(G::kGroups)>> : std::integral_constant<int, G::kGroups> {};
template <class G, class = void>
struct TileTokens : std::integral_constant<int, kPackTileTokens> {};
template <class G>
struct TileTokens<G, std::void_t<decltype(G::kTileTokens)>> : std::integral_constant<int, G::kTileTokens> {};

template <class G, class = void>
struct MinWideTokens : std::integral_constant<int, 1> {};
template <class G>
struct MinWideTokens<G, std::void_t<decltype(G::kMinWideTokens)>> : std::integral_constant<int, G::kMinWideTokens> {};

template <class Groups, int T>
void groups_x_tokens(int nb, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, float* out,
                     int64_t os) {
  const PackedTokens<T, act_of<Groups>> x(act, t0);
  const auto* wb = reinterpret_cast<const typename Groups::Block*>(w);
  constexpr int G = GroupsPerRun<Groups>::value;
  int64_t g = 0;
  if constexpr (G == 1 || T >= MinWideTokens<Groups>::value)
    for (; g + G <= ng; g += G) Groups::template run<T>(nb, wb + g * nb, x, out + g * kPackRows, os);
  if constexpr (G > 1)
    for (; g < ng; ++g) Groups::Tail::template run<T>(nb, wb + g * nb, x, out + g * kPackRows, os);
}

// The last nt < TileTokens tokens, in one tile of exactly nt.
template <class Groups, int T = TileTokens<Groups>::value - 1>
void groups_x_rest(int nb, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt, float* out,
                   int64_t os) {
  if constexpr (T > 0) {
    if (nt == T) return groups_x_tokens<Groups, T>(nb, w, ng, act, t0, out, os);
    groups_x_rest<Groups, T - 1>(nb, w, ng, act, t0, nt, out, os);
  }
}

// A PackedMatmulFn (kernels.h) over Groups: tiles of TileTokens tokens, then the rest. For
// Groups with a wide kernel (MinWideTokens > 1) the tiles are as equal as they can be instead
// (12 tokens in tiles of 8: 6 + 6, not 8 + 4), so that a rest under MinWideTokens does not fall
// to the narrow kernel, which unpacks every weight again for those few tokens.
template <class Groups>
void packed_matmul(int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt, float* out,
                   int64_t os) {
  const int nb = n / (std::is_same_v<act_of<Groups>, block_q8_K> ? QK_K : QK8_0);  // blocks per row
  constexpr int T = TileTokens<Groups>::value;
  constexpr bool kBalanced = MinWideTokens<Groups>::value > 1;
  const int tiles = (nt + T - 1) / T;
  for (int k = 0, t = 0; k < tiles; ++k) {
    const int size = kBalanced ? (nt - t) / (tiles - k) : std::min(T, nt - t);
    if (size == T) groups_x_tokens<Groups, T>(nb, w, ng, act, t0 + t, out + t * os, os);
    else groups_x_rest<Groups>(nb, w, ng, act, t0 + t, size, out + t * os, os);
    t += size;
  }
}

}  // namespace
}  // namespace el::kernels
