// Packed8 layout (packed.h): repacking, its inverse, and the scalar reference kernel.
#include "packed.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "../error.h"
#include "matmul.h"
#include "packed_k.h"

namespace el::kernels {

bool packable_type(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q8_0 || t == TensorType::Q5_0 || t == TensorType::IQ4_NL ||
         t == TensorType::Q4_1 || t == TensorType::Q5_1 || packable_k_type(t);
}

size_t packed_bytes(TensorType t, int64_t n_in, int64_t n_out) {
  const size_t rows = row_size(t, n_in) * size_t(n_out);
  const size_t blocks = size_t(n_in / QK_K) * size_t(n_out);  // super-blocks of the K-quants
  if (t == TensorType::Q4_K) return rows + blocks * (sizeof(block_q4_Kx8) / kPackRows - sizeof(block_q4_K));
  if (t == TensorType::Q5_K) return rows + blocks * (sizeof(block_q5_Kx8) / kPackRows - sizeof(block_q5_K));
  if (t == TensorType::Q3_K) return rows + blocks * (sizeof(block_q3_Kx8) / kPackRows - sizeof(block_q3_K));
  return rows;
}

namespace {

// Byte 4r + e of chunk c of a packed block is element 4c + e (Q4_0: and 16 + 4c + e) of row
// r: the rows' blocks move in 4-byte groups, group c of row r to offset 32c + 4r.
constexpr int chunk_offset(int r, int c) { return 32 * c + 4 * r; }

// Per packed type: its GGUF block, how many 4-byte groups a row's block has, and the bits
// flipped on the way in and out (Q8_0's +128 is a flip of each byte's top bit, both ways).
template <class Packed>
struct PackOf;
template <>
struct PackOf<block_q4_0x8> {
  using Row = block_q4_0;
  static constexpr TensorType kType = TensorType::Q4_0;
  static constexpr int kChunks = 4;
  static constexpr uint32_t kFlip = 0;
};
template <>
struct PackOf<block_q8_0x8> {
  using Row = block_q8_0;
  static constexpr TensorType kType = TensorType::Q8_0;
  static constexpr int kChunks = 8;
  static constexpr uint32_t kFlip = 0x80808080u;
};
template <>
struct PackOf<block_q5_0x8> {
  using Row = block_q5_0;
  static constexpr TensorType kType = TensorType::Q5_0;
  static constexpr int kChunks = 4;
  static constexpr uint32_t kFlip = 0;
};
template <>
struct PackOf<block_iq4_nlx8> {
  using Row = block_iq4_nl;
  static constexpr TensorType kType = TensorType::IQ4_NL;
  static constexpr int kChunks = 4;
  static constexpr uint32_t kFlip = 0;
};

template <>
struct PackOf<block_q4_1x8> {
  using Row = block_q4_1;
  static constexpr TensorType kType = TensorType::Q4_1;
  static constexpr int kChunks = 4;
  static constexpr uint32_t kFlip = 0;
};
template <>
struct PackOf<block_q5_1x8> {
  using Row = block_q5_1;
  static constexpr TensorType kType = TensorType::Q5_1;
  static constexpr int kChunks = 4;
  static constexpr uint32_t kFlip = 0;
};

template <class Packed>
constexpr bool kHasFifthBits = std::is_same_v<Packed, block_q5_0x8> || std::is_same_v<Packed, block_q5_1x8>;
template <class Packed>
constexpr bool kHasMins = std::is_same_v<Packed, block_q4_1x8> || std::is_same_v<Packed, block_q5_1x8>;

// Q5_0's and Q5_1's fifth bits (packed.h): GGUF bit j of the row's qh word is element j;
// packed, bit 4h + c of byte 4r + e is element 16h + 4c + e of row r.
constexpr int fifth_bit_of(int h, int c) { return 4 * h + c; }
// Byte e of row r gathers every fourth bit of qh from bit e (bit k of the byte = qh bit e + 4k),
// by shifts and masks rather than a bit at a time (this runs for every block at load).
template <class Row, class Packed>
void pack_fifth_bits(const Row& row, int r, Packed& out) {
  static_assert(fifth_bit_of(1, 3) == 7);
  uint32_t qh;
  std::memcpy(&qh, row.qh, 4);
  for (int e = 0; e < 4; ++e) {
    uint32_t x = (qh >> e) & 0x11111111u;  // bits 0, 4, ..., 28
    x = (x | x >> 3) & 0x03030303u;        // two per byte
    x = (x | x >> 6) & 0x000F000Fu;        // four per half word
    out.qh[4 * r + e] = uint8_t(x | x >> 12);
  }
}
template <class Row, class Packed>
void unpack_fifth_bits(const Packed& in, int r, Row& row) {
  uint32_t qh = 0;
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 4; ++c)
      for (int e = 0; e < 4; ++e)
        if ((in.qh[4 * r + e] >> fifth_bit_of(h, c)) & 1) qh |= 1u << (16 * h + 4 * c + e);
  std::memcpy(row.qh, &qh, 4);
}

inline void move4(const void* from, void* to, uint32_t flip) {
  uint32_t v;
  std::memcpy(&v, from, 4);
  v ^= flip;
  std::memcpy(to, &v, 4);
}

template <class Packed, class Row = typename PackOf<Packed>::Row>
void pack_block(const Row* const rows[kPackRows], int64_t i, Packed& out) {
  for (int r = 0; r < kPackRows; ++r) {
    if constexpr (kHasFifthBits<Packed>) pack_fifth_bits(rows[r][i], r, out);
    if constexpr (kHasMins<Packed>) out.m[r] = rows[r][i].m;
    out.d[r] = rows[r][i].d;
    for (int c = 0; c < PackOf<Packed>::kChunks; ++c)
      move4(rows[r][i].qs + 4 * c, out.q + chunk_offset(r, c), PackOf<Packed>::kFlip);
  }
}

template <class Packed, class Row = typename PackOf<Packed>::Row>
void unpack_block(const Packed& in, int64_t i, Row* const rows[kPackRows]) {
  for (int r = 0; r < kPackRows; ++r) {
    if constexpr (kHasFifthBits<Packed>) unpack_fifth_bits(in, r, rows[r][i]);
    if constexpr (kHasMins<Packed>) rows[r][i].m = in.m[r];
    rows[r][i].d = in.d[r];
    for (int c = 0; c < PackOf<Packed>::kChunks; ++c)
      move4(in.q + chunk_offset(r, c), rows[r][i].qs + 4 * c, PackOf<Packed>::kFlip);
  }
}

// The 8 GGUF rows of row group g.
template <class Row, class Bytes>
void group_rows(Bytes* rows, size_t rb, int64_t g, Row* out[kPackRows]) {
  for (int k = 0; k < kPackRows; ++k) out[k] = reinterpret_cast<Row*>(rows + size_t(g * kPackRows + k) * rb);
}

template <class Row, class Packed>
void repack_as(const uint8_t* src, int64_t n_in, int64_t n_out, uint8_t* dst) {
  const size_t rb = row_size(PackOf<Packed>::kType, n_in);
  const int64_t nb = n_in / QK8_0;
  Packed* out = reinterpret_cast<Packed*>(dst);
  for (int64_t g = 0; g < n_out / kPackRows; ++g) {
    const Row* rows[kPackRows];
    group_rows<const Row>(src, rb, g, rows);
    for (int64_t i = 0; i < nb; ++i) pack_block<Packed>(rows, i, out[g * nb + i]);
  }
}

template <class Row, class Packed>
void unpack_as(const uint8_t* src, int64_t n_in, int64_t n_out, uint8_t* dst) {
  const size_t rb = row_size(PackOf<Packed>::kType, n_in);
  const int64_t nb = n_in / QK8_0;
  const Packed* in = reinterpret_cast<const Packed*>(src);
  for (int64_t g = 0; g < n_out / kPackRows; ++g) {
    Row* rows[kPackRows];
    group_rows<Row>(dst, rb, g, rows);
    for (int64_t i = 0; i < nb; ++i) unpack_block<Packed>(in[g * nb + i], i, rows);
  }
}

// The integer dot of row r of a packed block with a token's block, before the offset
// correction: sum over elements of the stored unsigned weight x the activation quant.
// Q4_0 / Q4_1: the nibbles.
template <class Packed, std::enable_if_t<std::is_same_v<Packed, block_q4_0x8> || std::is_same_v<Packed, block_q4_1x8>,
                                         int> = 0>
int raw_dot(const Packed& b, int r, const int8_t* x) {
  int s = 0;
  for (int c = 0; c < 4; ++c)
    for (int e = 0; e < 4; ++e) {
      const uint8_t v = b.q[chunk_offset(r, c) + e];
      s += (v & 0x0F) * x[4 * c + e] + (v >> 4) * x[16 + 4 * c + e];
    }
  return s;
}

int raw_dot(const block_q8_0x8& b, int r, const int8_t* x) {
  int s = 0;
  for (int c = 0; c < 8; ++c)
    for (int e = 0; e < 4; ++e) s += b.q[chunk_offset(r, c) + e] * x[4 * c + e];
  return s;
}

// Q5_0 / Q5_1: the stored unsigned 5-bit quants (nibble + 16 x fifth bit).
template <class Packed, std::enable_if_t<kHasFifthBits<Packed>, int> = 0>
int raw_dot(const Packed& b, int r, const int8_t* x) {
  int s = 0;
  for (int c = 0; c < 4; ++c)
    for (int e = 0; e < 4; ++e) {
      const uint8_t v = b.q[chunk_offset(r, c) + e], h = b.qh[4 * r + e];
      const int lo = (v & 0x0F) | ((h >> fifth_bit_of(0, c)) & 1) << 4;
      const int hi = (v >> 4) | ((h >> fifth_bit_of(1, c)) & 1) << 4;
      s += lo * x[4 * c + e] + hi * x[16 + 4 * c + e];
    }
  return s;
}

// IQ4_NL: the values the nibbles stand for (the reference needs no offset).
int raw_dot(const block_iq4_nlx8& b, int r, const int8_t* x) {
  int s = 0;
  for (int c = 0; c < 4; ++c)
    for (int e = 0; e < 4; ++e) {
      const uint8_t v = b.q[chunk_offset(r, c) + e];
      s += kIq4nlValues[v & 0x0F] * x[4 * c + e] + kIq4nlValues[v >> 4] * x[16 + 4 * c + e];
    }
  return s;
}

// Activations A: Q8_0, or Q8_1 for the blocks with mins, whose share m x sd is added per block.
template <class Block, int Offset, class A = block_q8_0>
void ref_kernel(int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0, int nt, float* out,
                int64_t out_stride) {
  const int nb = n / QK8_0;
  for (int64_t g = 0; g < ng; ++g) {
    const Block* wb = reinterpret_cast<const Block*>(w) + g * nb;
    for (int t = 0; t < nt; ++t) {
      const A* a = static_cast<const A*>(act.row(t0 + t));
      const float* da = act.f32_row(t0 + t);
      const float* sd = da + nb;  // Q8_1: the blocks' s (matmul.h)
      const int32_t* sa = act.qsum_row(t0 + t);
      float acc[kPackRows] = {};
      for (int i = 0; i < nb; ++i)
        for (int r = 0; r < kPackRows; ++r) {
          const int isum = -Offset * sa[i] + raw_dot(wb[i], r, a[i].qs);
          acc[r] += float(isum) * (fp16_to_fp32(wb[i].d[r]) * da[i]);
          if constexpr (kHasMins<Block>) acc[r] += fp16_to_fp32(wb[i].m[r]) * sd[i];
        }
      for (int r = 0; r < kPackRows; ++r) out[t * out_stride + g * kPackRows + r] = acc[r];
    }
  }
}

void require_packable(TensorType type, int64_t n_out) {
  if (!packable_type(type) || n_out % kPackRows != 0)
    fail(ErrorKind::Internal, std::string("Packed8 layout: no packing for ") + type_traits(type).name + " x " +
                                  std::to_string(n_out) +
                                  " rows (a type of packed.h or packed_k.h, rows a multiple of 8)");
}

}  // namespace

void repack(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst) {
  require_packable(type, n_out);
  if (packable_k_type(type)) return detail::repack_k(type, src, n_in, n_out, dst);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::Q4_0: return repack_as<block_q4_0, block_q4_0x8>(s, n_in, n_out, d);
    case TensorType::Q5_0: return repack_as<block_q5_0, block_q5_0x8>(s, n_in, n_out, d);
    case TensorType::IQ4_NL: return repack_as<block_iq4_nl, block_iq4_nlx8>(s, n_in, n_out, d);
    case TensorType::Q4_1: return repack_as<block_q4_1, block_q4_1x8>(s, n_in, n_out, d);
    case TensorType::Q5_1: return repack_as<block_q5_1, block_q5_1x8>(s, n_in, n_out, d);
    default: return repack_as<block_q8_0, block_q8_0x8>(s, n_in, n_out, d);
  }
}

void unpack(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst) {
  require_packable(type, n_out);
  if (packable_k_type(type)) return detail::unpack_k(type, src, n_in, n_out, dst);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::Q4_0: return unpack_as<block_q4_0, block_q4_0x8>(s, n_in, n_out, d);
    case TensorType::Q5_0: return unpack_as<block_q5_0, block_q5_0x8>(s, n_in, n_out, d);
    case TensorType::IQ4_NL: return unpack_as<block_iq4_nl, block_iq4_nlx8>(s, n_in, n_out, d);
    case TensorType::Q4_1: return unpack_as<block_q4_1, block_q4_1x8>(s, n_in, n_out, d);
    case TensorType::Q5_1: return unpack_as<block_q5_1, block_q5_1x8>(s, n_in, n_out, d);
    default: return unpack_as<block_q8_0, block_q8_0x8>(s, n_in, n_out, d);
  }
}

void packed_matmul_ref(TensorType type, int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0,
                       int nt, float* out, int64_t out_stride) {
  if (packable_k_type(type)) return detail::packed_k_matmul_ref(type, n, w, ng, act, t0, nt, out, out_stride);
  switch (type) {
    case TensorType::Q4_0: return ref_kernel<block_q4_0x8, kPackOffsetQ4_0>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q5_0: return ref_kernel<block_q5_0x8, kPackOffsetQ5_0>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::IQ4_NL: return ref_kernel<block_iq4_nlx8, 0>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q4_1: return ref_kernel<block_q4_1x8, 0, block_q8_1>(n, w, ng, act, t0, nt, out, out_stride);
    case TensorType::Q5_1: return ref_kernel<block_q5_1x8, 0, block_q8_1>(n, w, ng, act, t0, nt, out, out_stride);
    default: return ref_kernel<block_q8_0x8, kPackOffsetQ8_0>(n, w, ng, act, t0, nt, out, out_stride);
  }
}

}  // namespace el::kernels
