// Slot images: a ready slot's adapter as bytes (export) and back into a slot (import), for the
// daemon's warm tier. The payload is the slot's own regions at the adapter's padded rank, so an
// import is a header check plus one memcpy per (layer, module): no parse, transpose or
// quantization, and the slot holds bit for bit what the exported one held.
//
// Image layout (little endian, as the engine writes it on every supported target):
//   ImageHeader (fixed size) | adapted flags: n_layer x kNumModules bytes | path bytes |
//   zero padding to a multiple of 64 | payload: for each layer, for each adapted module in
//   Module order, its A region then its B region at padded rank R (a/b_region_bytes).
// The 64-byte payload offset keeps 2-byte values aligned for a byte-plane shuffle of the image.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../error.h"
#include "../kernels/kernels.h"
#include "../round_up.h"
#include "lora_pool.h"

namespace el::lora {

namespace {

constexpr char kMagic[8] = {'E', 'L', 'L', 'O', 'R', 'A', 'I', 'M'};
// Bump when a pool layout changes (kernels.h block sizes, region order): old images are refused.
constexpr uint32_t kImageVersion = 1;
constexpr size_t kPayloadAlign = 64;

struct ImageHeader {
  char magic[8];
  uint32_t version;
  uint32_t pool_type;     // LoraPoolType
  uint64_t fingerprint;   // LoraPool::image_fingerprint() of the exporting pool
  int32_t rank;
  float alpha;
  float factor;
  int32_t n_layer;
  int64_t adapter_bytes;  // payload bytes (what SlotInfo::bytes reports)
  uint32_t path_len;
  uint32_t payload_offset;
  char modules[64];
  char format[8];
};
static_assert(sizeof(ImageHeader) == 128, "the image header is part of the image format");

// FNV-1a over the bytes of each value: stable across runs and builds of the same layout.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  template <typename T>
  Fnv& add(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    for (size_t i = 0; i < sizeof(T); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return *this;
  }
  Fnv& add_str(const std::string& s) {
    for (char c : s) add(c);
    return add(uint8_t(0));
  }
};

void copy_field(char* dst, size_t cap, const std::string& s) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, s.data(), std::min(cap - 1, s.size()));
}

std::string field(const char* src, size_t cap) { return std::string(src, strnlen(src, cap)); }

size_t payload_offset(int n_layer, size_t path_len) {
  return round_up<size_t>(sizeof(ImageHeader) + size_t(n_layer) * kNumModules + path_len, kPayloadAlign);
}

[[noreturn]] void refuse(const std::string& why) { fail(ErrorKind::InvalidArgument, "LoRA slot image refused: " + why); }

}  // namespace

uint64_t LoraPool::image_fingerprint() const {
  Fnv f;
  f.add(kImageVersion).add_str(shapes_.arch).add(shapes_.n_layer);
  for (int m = 0; m < kNumModules; ++m) f.add(shapes_.n_in[m]).add(shapes_.n_out[m]);
  f.add(uint32_t(type_)).add(int32_t(kernels::kLoraRankStep)).add(int32_t(kernels::kLoraOutChunk));
  // The region sizes at one rank step stand for the block layouts of the integer pools.
  for (int m = 0; m < kNumModules; ++m) f.add(a_bytes(m, kernels::kLoraRankStep)).add(b_bytes(m, kernels::kLoraRankStep));
  return f.h;
}

template <typename F>
void LoraPool::for_each_region(int slot, int R, F&& f) const {
  const Slot& s = slots_[slot];
  for (int l = 0; l < shapes_.n_layer; ++l)
    for (int m = 0; m < kNumModules; ++m) {
      if (!s.adapted[size_t(l) * kNumModules + m]) continue;
      f(a_region(slot, l, Module(m)), size_t(a_bytes(m, R)));
      f(b_region(slot, l, Module(m)), size_t(b_bytes(m, R)));
    }
}

size_t LoraPool::image_size(int slot) const {
  check_slot(slot);
  if (!is_ready(slot)) fail(ErrorKind::InvalidArgument, "LoRA slot " + std::to_string(slot) + " has no adapter loaded");
  const Slot& s = slots_[slot];
  return payload_offset(shapes_.n_layer, s.path.size()) + size_t(s.bytes);
}

size_t LoraPool::export_image(int slot, uint8_t* buf, size_t cap) {
  acquire(slot);  // checks the slot is ready; an unload or load over it is refused until release
  try {
    const Slot& s = slots_[slot];
    const size_t n = image_size(slot);
    if (!buf || cap < n)
      fail(ErrorKind::InvalidArgument, "LoRA slot image: the buffer holds " + std::to_string(cap) + " bytes, the image needs " +
                                           std::to_string(n));
    ImageHeader h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kImageVersion;
    h.pool_type = uint32_t(type_);
    h.fingerprint = image_fingerprint();
    h.rank = s.rank;
    h.alpha = s.alpha;
    h.factor = s.factor;
    h.n_layer = shapes_.n_layer;
    h.adapter_bytes = s.bytes;
    h.path_len = uint32_t(s.path.size());
    h.payload_offset = uint32_t(payload_offset(shapes_.n_layer, s.path.size()));
    copy_field(h.modules, sizeof h.modules, s.modules);
    copy_field(h.format, sizeof h.format, s.format);
    std::memset(buf, 0, h.payload_offset);
    std::memcpy(buf, &h, sizeof h);
    std::memcpy(buf + sizeof h, s.adapted.data(), s.adapted.size());
    std::memcpy(buf + sizeof h + s.adapted.size(), s.path.data(), s.path.size());
    uint8_t* out = buf + h.payload_offset;
    for_each_region(slot, padded_rank(s.rank), [&](const uint8_t* region, size_t bytes) {
      std::memcpy(out, region, bytes);
      out += bytes;
    });
    if (out != buf + n) fail(ErrorKind::Internal, "LoRA slot image: the regions do not add up to the slot's bytes");
    release(slot);
    return n;
  } catch (...) {
    release(slot);
    throw;
  }
}

SlotInfo LoraPool::import_image(int slot, const uint8_t* buf, size_t n) {
  check_slot(slot);
  // Everything is checked before the slot is touched: a refused image leaves it as it was.
  ImageHeader h;
  if (!buf || n < sizeof h) refuse("it is " + std::to_string(n) + " bytes, shorter than its header");
  std::memcpy(&h, buf, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) refuse("not an edgelora slot image (bad magic)");
  if (h.version != kImageVersion)
    refuse("image format version " + std::to_string(h.version) + ", this engine reads version " + std::to_string(kImageVersion));
  if (h.pool_type != uint32_t(type_)) {
    const LoraPoolTraits* made_for = find_pool_type(h.pool_type);
    refuse(std::string("it was made for a ") + (made_for ? made_for->name : "f16") + " pool, this pool is " +
           pool_type_name(type_));
  }
  if (h.n_layer != shapes_.n_layer || h.fingerprint != image_fingerprint())
    refuse("it was made for another model shape or pool layout (" + std::to_string(h.n_layer) + " layers, fingerprint " +
           std::to_string(h.fingerprint) + "; this pool: " + std::to_string(shapes_.n_layer) + " layers, fingerprint " +
           std::to_string(image_fingerprint()) + ")");
  if (h.rank < 1 || h.rank > max_rank_)
    refuse("rank " + std::to_string(h.rank) + ", this pool holds ranks 1.." + std::to_string(max_rank_));
  const size_t flags = size_t(shapes_.n_layer) * kNumModules;
  if (h.payload_offset != payload_offset(shapes_.n_layer, h.path_len) || h.adapter_bytes < 0 ||
      n != size_t(h.payload_offset) + size_t(h.adapter_bytes))
    refuse("its size (" + std::to_string(n) + " bytes) does not match its header (truncated or damaged)");
  std::vector<uint8_t> adapted(buf + sizeof h, buf + sizeof h + flags);
  const int R = padded_rank(h.rank);
  int64_t expect = 0;
  for (size_t i = 0; i < flags; ++i) {
    if (adapted[i] > 1) refuse("its module flags are damaged");
    if (adapted[i]) expect += a_bytes(int(i % kNumModules), R) + b_bytes(int(i % kNumModules), R);
  }
  if (expect != h.adapter_bytes) refuse("its payload size does not match its modules and rank (damaged)");

  begin_write(slot);
  Slot& s = slots_[slot];
  s.adapted = std::move(adapted);
  const uint8_t* in = buf + h.payload_offset;
  for_each_region(slot, R, [&](const uint8_t* region, size_t bytes) {
    std::memcpy(const_cast<uint8_t*>(region), in, bytes);
    in += bytes;
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.rank = h.rank;
    s.alpha = h.alpha;
    s.factor = h.factor;
    s.bytes = h.adapter_bytes;
    s.path.assign(reinterpret_cast<const char*>(buf + sizeof h + flags), h.path_len);
    s.format = field(h.format, sizeof h.format);
    s.modules = field(h.modules, sizeof h.modules);
    s.state.store(kReady, std::memory_order_release);
  }
  return info(slot);
}

}  // namespace el::lora
