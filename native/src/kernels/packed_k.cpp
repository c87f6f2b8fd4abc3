// Packed8 layouts of the K-quants (packed_k.h): repacking, its inverse, and the scalar
// reference kernel, the readable spec of the SIMD ones.
#include "packed_k.h"

#include <cstring>
#include <type_traits>

#include "block_scales.h"
#include "matmul.h"

namespace el::kernels {

bool packable_k_type(TensorType t) {
  return t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K || t == TensorType::Q3_K ||
         t == TensorType::Q2_K;
}

namespace {

// ---- Q4_K and Q5_K ----

// GGUF Q4_K / Q5_K: element e's nibble is byte 32 (e / 64) + e % 32 of qs, low half for
// e % 64 < 32; Q5_K's fifth bit is bit e / 32 of qh[e % 32].
template <class Row>
int q4k_nibble(const Row& b, int e) {
  const uint8_t v = b.qs[32 * (e / 64) + e % 32];
  return (e % 64) < 32 ? v & 0xF : v >> 4;
}
template <class Row>
void set_q4k_nibble(Row& b, int e, int u) {
  b.qs[32 * (e / 64) + e % 32] |= uint8_t(u << ((e % 64) < 32 ? 0 : 4));
}
// The inverse of q4k_scales_mins (block_scales.h): 8 6-bit scales and mins into 12 bytes.
void set_q4k_scales_mins(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}
// Packed: element 32j + 16h + 4c + e of row r is nibble h of q[j][32c + 4r + e] (Q5_K: its
// fifth bit is bit 4h + c of qh[j][4r + e]).
constexpr int q4kx8_byte(int r, int c, int e) { return 32 * c + 4 * r + e; }

template <class Packed>
constexpr bool kFifth = std::is_same_v<Packed, block_q5_Kx8>;

template <class Row, class Packed>
void pack_q45_K(const Row* const rows[kPackRows], int64_t i, Packed& out) {
  std::memset(&out, 0, sizeof out);
  for (int r = 0; r < kPackRows; ++r) {
    const Row& b = rows[r][i];
    out.d[r] = b.d;
    out.dmin[r] = b.dmin;
    uint8_t sc[8], m[8];
    q4k_scales_mins(b.scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      out.sc[j][r] = sc[j];
      out.m[j][r] = m[j];
      for (int h = 0; h < 2; ++h)
        for (int c = 0; c < 4; ++c)
          for (int e = 0; e < 4; ++e) {
            const int el = 32 * j + 16 * h + 4 * c + e;
            out.q[j][q4kx8_byte(r, c, e)] |= uint8_t(q4k_nibble(b, el) << (4 * h));
            if constexpr (kFifth<Packed>)
              out.qh[j][4 * r + e] |= uint8_t(((b.qh[el % 32] >> (el / 32)) & 1) << (4 * h + c));
          }
    }
  }
}

template <class Row, class Packed>
void unpack_q45_K(const Packed& in, int64_t i, Row* const rows[kPackRows]) {
  for (int r = 0; r < kPackRows; ++r) {
    Row& b = rows[r][i];
    std::memset(&b, 0, sizeof b);
    b.d = in.d[r];
    b.dmin = in.dmin[r];
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = in.sc[j][r];
      m[j] = in.m[j][r];
      for (int h = 0; h < 2; ++h)
        for (int c = 0; c < 4; ++c)
          for (int e = 0; e < 4; ++e) {
            const int el = 32 * j + 16 * h + 4 * c + e;
            set_q4k_nibble(b, el, (in.q[j][q4kx8_byte(r, c, e)] >> (4 * h)) & 0xF);
            if constexpr (kFifth<Packed>)
              b.qh[el % 32] |= uint8_t(((in.qh[j][4 * r + e] >> (4 * h + c)) & 1) << (el / 32));
          }
    }
    set_q4k_scales_mins(sc, m, b.scales);
  }
}

// ---- Q3_K ----

// GGUF Q3_K: element e's 2-bit part and high bit (as scalar_kquants.cpp).
inline int q3k_low(const block_q3_K& b, int e) { return (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
inline int q3k_high(const block_q3_K& b, int e) { return (b.hmask[e % 32] >> (e / 32)) & 1; }
// The inverse of q3k_scale_words: 16 stored 6-bit scales into 12 bytes.
void set_q3k_scales(const int8_t sc[16], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int l = sc[j] + 32;
    out[j % 8] |= uint8_t((l & 0xF) << (j < 8 ? 0 : 4));
    out[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
  }
}
// Packed: element 16s + 4k + e of row r has its 2-bit part in bits 2k of q2[s][4r + e] and its
// high bit in bit 4 (s % 2) + k of qh[s / 2][4r + e].
constexpr int q3kx8_high_bit(int s, int k) { return 4 * (s % 2) + k; }

void pack_q3_K(const block_q3_K* const rows[kPackRows], int64_t i, block_q3_Kx8& out) {
  std::memset(&out, 0, sizeof out);
  for (int r = 0; r < kPackRows; ++r) {
    const block_q3_K& b = rows[r][i];
    out.d[r] = b.d;
    int8_t sc[16];
    q3k_scales(b.scales, sc);
    for (int s = 0; s < 16; ++s) {
      out.sc[s][r] = sc[s];
      for (int k = 0; k < 4; ++k)
        for (int e = 0; e < 4; ++e) {
          const int el = 16 * s + 4 * k + e;
          out.q2[s][4 * r + e] |= uint8_t(q3k_low(b, el) << (2 * k));
          out.qh[s / 2][4 * r + e] |= uint8_t(q3k_high(b, el) << q3kx8_high_bit(s, k));
        }
    }
  }
}

void unpack_q3_K(const block_q3_Kx8& in, int64_t i, block_q3_K* const rows[kPackRows]) {
  for (int r = 0; r < kPackRows; ++r) {
    block_q3_K& b = rows[r][i];
    std::memset(&b, 0, sizeof b);
    b.d = in.d[r];
    int8_t sc[16];
    for (int s = 0; s < 16; ++s) {
      sc[s] = in.sc[s][r];
      for (int k = 0; k < 4; ++k)
        for (int e = 0; e < 4; ++e) {
          const int el = 16 * s + 4 * k + e;
          b.qs[32 * (el / 128) + el % 32] |= uint8_t(((in.q2[s][4 * r + e] >> (2 * k)) & 3) << (2 * ((el % 128) / 32)));
          b.hmask[el % 32] |= uint8_t(((in.qh[s / 2][4 * r + e] >> q3kx8_high_bit(s, k)) & 1) << (el / 32));
        }
    }
    set_q3k_scales(sc, b.scales);
  }
}

// ---- Q2_K ----

// GGUF Q2_K: element e's 2 bits as Q3_K's; packed as Q3_K's q2.
inline int q2k_low(const block_q2_K& b, int e) { return (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

void pack_q2_K(const block_q2_K* const rows[kPackRows], int64_t i, block_q2_Kx8& out) {
  std::memset(&out, 0, sizeof out);
  for (int r = 0; r < kPackRows; ++r) {
    const block_q2_K& b = rows[r][i];
    out.d[r] = b.d;
    out.dmin[r] = b.dmin;
    for (int s = 0; s < 16; ++s) {
      out.sm[s][r] = b.scales[s];
      for (int k = 0; k < 4; ++k)
        for (int e = 0; e < 4; ++e) out.q2[s][4 * r + e] |= uint8_t(q2k_low(b, 16 * s + 4 * k + e) << (2 * k));
    }
  }
}

void unpack_q2_K(const block_q2_Kx8& in, int64_t i, block_q2_K* const rows[kPackRows]) {
  for (int r = 0; r < kPackRows; ++r) {
    block_q2_K& b = rows[r][i];
    std::memset(&b, 0, sizeof b);
    b.d = in.d[r];
    b.dmin = in.dmin[r];
    for (int s = 0; s < 16; ++s) {
      b.scales[s] = in.sm[s][r];
      for (int k = 0; k < 4; ++k)
        for (int e = 0; e < 4; ++e) {
          const int el = 16 * s + 4 * k + e;
          b.qs[32 * (el / 128) + el % 32] |= uint8_t(((in.q2[s][4 * r + e] >> (2 * k)) & 3) << (2 * ((el % 128) / 32)));
        }
    }
  }
}

// ---- Q6_K ----

// GGUF Q6_K: per 128 elements, 64 bytes of ql and 32 of qh; element 128 n + 32 k + l (k 0..3,
// l 0..31) has its low 4 bits in nibble k / 2 of ql[64 n + 32 (k % 2) + l] and its high 2 bits
// in bits 2k of qh[32 n + l].
inline int q6k_low_byte(int e) { return 64 * (e / 128) + 32 * ((e % 128) / 32 % 2) + e % 32; }
inline int q6k_low_shift(int e) { return 4 * ((e % 128) / 64); }
inline int q6k_high_byte(int e) { return 32 * (e / 128) + e % 32; }
inline int q6k_high_shift(int e) { return 2 * ((e % 128) / 32); }
// Packed: element 32j + 16h + 4c + e of row r has its low 4 bits in nibble h of q[j][32c + 4r + e]
// and its high 2 bits in bits 2c of qh[j][32h + 4r + e].

void pack_q6_K(const block_q6_K* const rows[kPackRows], int64_t i, block_q6_Kx8& out) {
  std::memset(&out, 0, sizeof out);
  for (int r = 0; r < kPackRows; ++r) {
    const block_q6_K& b = rows[r][i];
    out.d[r] = b.d;
    for (int s = 0; s < 16; ++s) out.sc[s][r] = b.scales[s];
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h)
        for (int c = 0; c < 4; ++c)
          for (int e = 0; e < 4; ++e) {
            const int el = 32 * j + 16 * h + 4 * c + e;
            const int lo = (b.ql[q6k_low_byte(el)] >> q6k_low_shift(el)) & 0xF;
            const int hi = (b.qh[q6k_high_byte(el)] >> q6k_high_shift(el)) & 3;
            out.q[j][q4kx8_byte(r, c, e)] |= uint8_t(lo << (4 * h));
            out.qh[j][32 * h + 4 * r + e] |= uint8_t(hi << (2 * c));
          }
  }
}

void unpack_q6_K(const block_q6_Kx8& in, int64_t i, block_q6_K* const rows[kPackRows]) {
  for (int r = 0; r < kPackRows; ++r) {
    block_q6_K& b = rows[r][i];
    std::memset(&b, 0, sizeof b);
    b.d = in.d[r];
    for (int s = 0; s < 16; ++s) b.scales[s] = in.sc[s][r];
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h)
        for (int c = 0; c < 4; ++c)
          for (int e = 0; e < 4; ++e) {
            const int el = 32 * j + 16 * h + 4 * c + e;
            const int lo = (in.q[j][q4kx8_byte(r, c, e)] >> (4 * h)) & 0xF;
            const int hi = (in.qh[j][32 * h + 4 * r + e] >> (2 * c)) & 3;
            b.ql[q6k_low_byte(el)] |= uint8_t(lo << q6k_low_shift(el));
            b.qh[q6k_high_byte(el)] |= uint8_t(hi << q6k_high_shift(el));
          }
  }
}

// ---- the walk over row groups, shared by every type ----

template <class Row, class Packed, class Pack>
void repack_as(const uint8_t* src, int64_t n_in, int64_t n_out, uint8_t* dst, Pack pack) {
  const size_t rb = n_in / QK_K * sizeof(Row);
  const int64_t nb = n_in / QK_K;
  Packed* out = reinterpret_cast<Packed*>(dst);
  for (int64_t g = 0; g < n_out / kPackRows; ++g) {
    const Row* rows[kPackRows];
    for (int k = 0; k < kPackRows; ++k) rows[k] = reinterpret_cast<const Row*>(src + size_t(g * kPackRows + k) * rb);
    for (int64_t i = 0; i < nb; ++i) pack(rows, i, out[g * nb + i]);
  }
}

template <class Row, class Packed, class Unpack>
void unpack_as(const uint8_t* src, int64_t n_in, int64_t n_out, uint8_t* dst, Unpack unpack) {
  const size_t rb = n_in / QK_K * sizeof(Row);
  const int64_t nb = n_in / QK_K;
  const Packed* in = reinterpret_cast<const Packed*>(src);
  for (int64_t g = 0; g < n_out / kPackRows; ++g) {
    Row* rows[kPackRows];
    for (int k = 0; k < kPackRows; ++k) rows[k] = reinterpret_cast<Row*>(dst + size_t(g * kPackRows + k) * rb);
    for (int64_t i = 0; i < nb; ++i) unpack(in[g * nb + i], i, rows);
  }
}

// ---- reference kernels: the integer sums of packed_k.h, then the float steps the SIMD kernels take ----

// Row r of a Q4_K / Q5_K x8 block against a token's block: isum and msum.
template <class Packed, std::enable_if_t<std::is_same_v<Packed, block_q4_Kx8> || kFifth<Packed>, int> = 0>
void dots(const Packed& b, int r, const block_q8_K& a, int32_t& isum, int32_t& msum) {
  isum = msum = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    int32_t s = 0;
    for (int c = 0; c < 4; ++c)
      for (int e = 0; e < 4; ++e) {
        const uint8_t v = b.q[j][q4kx8_byte(r, c, e)];
        int lo = v & 0xF, hi = v >> 4;
        if constexpr (kFifth<Packed>) {
          lo |= ((b.qh[j][4 * r + e] >> c) & 1) << 4;
          hi |= ((b.qh[j][4 * r + e] >> (4 + c)) & 1) << 4;
        }
        s += lo * a.qs[32 * j + 4 * c + e] + hi * a.qs[32 * j + 16 + 4 * c + e];
      }
    isum += b.sc[j][r] * s;
    msum += b.m[j][r] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
}

void dots(const block_q3_Kx8& b, int r, const block_q8_K& a, int32_t& isum, int32_t& msum) {
  isum = msum = 0;
  for (int s = 0; s < QK_K / 16; ++s) {
    int32_t ss = -kPackOffsetQ3_K * a.bsums[s];
    for (int k = 0; k < 4; ++k)
      for (int e = 0; e < 4; ++e) {
        const int low = (b.q2[s][4 * r + e] >> (2 * k)) & 3;
        const int u = low | (((b.qh[s / 2][4 * r + e] >> q3kx8_high_bit(s, k)) & 1) << 2);
        ss += u * a.qs[16 * s + 4 * k + e];
      }
    isum += b.sc[s][r] * ss;
  }
}

void dots(const block_q2_Kx8& b, int r, const block_q8_K& a, int32_t& isum, int32_t& msum) {
  isum = msum = 0;
  for (int s = 0; s < QK_K / 16; ++s) {
    int32_t ss = 0;
    for (int k = 0; k < 4; ++k)
      for (int e = 0; e < 4; ++e) ss += ((b.q2[s][4 * r + e] >> (2 * k)) & 3) * a.qs[16 * s + 4 * k + e];
    isum += (b.sm[s][r] & 0xF) * ss;
    msum += (b.sm[s][r] >> 4) * a.bsums[s];
  }
}

void dots(const block_q6_Kx8& b, int r, const block_q8_K& a, int32_t& isum, int32_t& msum) {
  isum = msum = 0;
  for (int j = 0; j < QK_K / 32; ++j)
    for (int h = 0; h < 2; ++h) {
      int32_t ss = -kPackOffsetQ6_K * a.bsums[2 * j + h];
      for (int c = 0; c < 4; ++c)
        for (int e = 0; e < 4; ++e) {
          const int low = (b.q[j][q4kx8_byte(r, c, e)] >> (4 * h)) & 0xF;
          const int u = low | (((b.qh[j][32 * h + 4 * r + e] >> (2 * c)) & 3) << 4);
          ss += u * a.qs[32 * j + 16 * h + 4 * c + e];
        }
      isum += b.sc[2 * j + h][r] * ss;
    }
}

template <class Packed>
float dmin_of(const Packed& b, int r) {
  return fp16_to_fp32(b.dmin[r]);
}
inline float dmin_of(const block_q3_Kx8&, int) { return 0.f; }
inline float dmin_of(const block_q6_Kx8&, int) { return 0.f; }

template <class Packed>
void ref_kernel(int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt, float* out,
                int64_t out_stride) {
  const int nb = n / QK_K;
  for (int64_t g = 0; g < ng; ++g) {
    const Packed* wb = reinterpret_cast<const Packed*>(w) + g * nb;
    for (int t = 0; t < nt; ++t) {
      const block_q8_K* a = static_cast<const block_q8_K*>(act.row(t0 + t));
      float acc[kPackRows] = {};
      for (int i = 0; i < nb; ++i)
        for (int r = 0; r < kPackRows; ++r) {
          int32_t isum, msum;
          dots(wb[i], r, a[i], isum, msum);
          acc[r] += float(isum) * (fp16_to_fp32(wb[i].d[r]) * a[i].d);
          acc[r] -= float(msum) * (dmin_of(wb[i], r) * a[i].d);
        }
      for (int r = 0; r < kPackRows; ++r) out[t * out_stride + g * kPackRows + r] = acc[r];
    }
  }
}

}  // namespace

namespace detail {

void repack_k(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::Q4_K:
      return repack_as<block_q4_K, block_q4_Kx8>(s, n_in, n_out, d, pack_q45_K<block_q4_K, block_q4_Kx8>);
    case TensorType::Q5_K:
      return repack_as<block_q5_K, block_q5_Kx8>(s, n_in, n_out, d, pack_q45_K<block_q5_K, block_q5_Kx8>);
    case TensorType::Q6_K: return repack_as<block_q6_K, block_q6_Kx8>(s, n_in, n_out, d, pack_q6_K);
    case TensorType::Q3_K: return repack_as<block_q3_K, block_q3_Kx8>(s, n_in, n_out, d, pack_q3_K);
    default: return repack_as<block_q2_K, block_q2_Kx8>(s, n_in, n_out, d, pack_q2_K);
  }
}

void unpack_k(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::Q4_K:
      return unpack_as<block_q4_K, block_q4_Kx8>(s, n_in, n_out, d, unpack_q45_K<block_q4_K, block_q4_Kx8>);
    case TensorType::Q5_K:
      return unpack_as<block_q5_K, block_q5_Kx8>(s, n_in, n_out, d, unpack_q45_K<block_q5_K, block_q5_Kx8>);
    case TensorType::Q6_K: return unpack_as<block_q6_K, block_q6_Kx8>(s, n_in, n_out, d, unpack_q6_K);
    case TensorType::Q3_K: return unpack_as<block_q3_K, block_q3_Kx8>(s, n_in, n_out, d, unpack_q3_K);
    default: return unpack_as<block_q2_K, block_q2_Kx8>(s, n_in, n_out, d, unpack_q2_K);
  }
}

void packed_k_matmul_ref(TensorType type, int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0,
                         int nt, float* out, int64_t out_stride) {
  switch (type) {
    case TensorType::Q4_K: return ref_kernel<block_q4_Kx8>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q5_K: return ref_kernel<block_q5_Kx8>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q6_K: return ref_kernel<block_q6_Kx8>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q3_K: return ref_kernel<block_q3_Kx8>(n, w, ng, act, t0, nt, out, out_stride);
    default: return ref_kernel<block_q2_Kx8>(n, w, ng, act, t0, nt, out, out_stride);
  }
}

}  // namespace detail
}  // namespace el::kernels
