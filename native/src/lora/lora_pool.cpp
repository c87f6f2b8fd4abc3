// Slot arena, slot state machine and conversion of an opened adapter into a slot.
#include "lora_pool.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <new>

#include "../error.h"
#include "../round_up.h"
#include "lora_source.h"

namespace el::lora {

namespace {

// One row of a LoRA tensor to floats. Reads through memcpy: safetensors data need not be
// aligned.
void row_to_float(TensorType type, const uint8_t* src, int64_t n, float* dst) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case TensorType::F16:
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = type == TensorType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
      }
      return;
    case TensorType::Q8_0:
      for (int64_t b = 0; b < n / QK8_0; ++b) {
        block_q8_0 blk;
        std::memcpy(&blk, src + b * sizeof(block_q8_0), sizeof blk);
        const float d = fp16_to_fp32(blk.d);
        for (int k = 0; k < QK8_0; ++k) dst[b * QK8_0 + k] = d * float(blk.qs[k]);
      }
      return;
    default:
      fail(ErrorKind::Internal, "LoRA row conversion: unexpected tensor type");  // validate_source refused it
  }
}

// Both pool types keep values (F16) or scales (Q8, amax / 127) in F16.
void check_range(const float* v, int64_t n, const TensorRef& t) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]) || std::fabs(v[i]) > 65504.0f)
      fail(ErrorKind::Unsupported, "tensor '" + t.name + "' holds " + std::to_string(v[i]) +
                                       ", outside the F16 range of the slot pool");
}

// check_range for a row of F16 source values (2 bytes each, unaligned): a half is out of the
// range only when it is infinite or NaN (exponent bits all ones).
void check_range_f16(const uint8_t* row, int64_t n, const TensorRef& t) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    if ((h & 0x7c00) == 0x7c00) {
      const float v = fp16_to_fp32(h);
      check_range(&v, 1, t);
    }
  }
}

}  // namespace

int padded_rank(int rank) { return round_up(rank, kernels::kLoraRankStep); }

int64_t a_region_bytes(LoraPoolType type, int64_t n_in, int R) { return pool_traits(type).a_bytes(n_in, R); }

int64_t b_region_bytes(LoraPoolType type, int64_t n_out, int R) { return pool_traits(type).b_bytes(n_out, R); }

float ModuleView::a_value(int j, int64_t i) const { return pool_traits(type).a_value(a, padded, j, i); }

float ModuleView::b_value(int64_t o, int j) const { return pool_traits(type).b_value(b, padded, o, j); }

LoraPool::LoraPool(const ModelShapes& shapes, int n_slots, int max_rank, LoraPoolType type)
    : shapes_(shapes), n_slots_(n_slots), max_rank_(max_rank), max_padded_(padded_rank(max_rank)), type_(type) {
  if (n_slots < 0 || max_rank < 1 || shapes.n_layer < 1)
    fail(ErrorKind::InvalidArgument, "LoRA pool needs n_slots >= 0, max_rank >= 1 and a model with layers");
  const LoraPoolTraits& traits = pool_traits(type);
  if (max_padded_ > traits.max_padded_rank)
    fail(ErrorKind::InvalidArgument, std::string("the ") + traits.name + " LoRA pool supports ranks up to " +
                                         std::to_string(traits.max_padded_rank) + ", not " + std::to_string(max_rank));
  // The groups of modules one projection dispatch reads (Context::layer_forward), in order.
  const std::vector<std::vector<Module>> groups = {
      {Module::Q, Module::K, Module::V}, {Module::O}, {Module::Gate, Module::Up}, {Module::Down}};
  for (const auto& group : groups) {
    for (Module m : group) {
      a_offset_[int(m)] = layer_bytes_;
      layer_bytes_ += a_bytes(int(m), max_padded_);
    }
    for (Module m : group) {
      b_offset_[int(m)] = layer_bytes_;
      layer_bytes_ += b_bytes(int(m), max_padded_);
    }
  }
  slot_bytes_ = layer_bytes_ * shapes.n_layer;
  const double bytes = double(slot_bytes_) * double(n_slots);
  // Not zeroed: untouched pages cost no RAM until an adapter is loaded into them.
  arena_ = try_alloc_big(size_t(slot_bytes_) * size_t(n_slots), HugePages::Ask);
  if (!arena_ && n_slots > 0)
    fail(ErrorKind::OutOfMemory, "cannot allocate the LoRA slot pool (" + std::to_string(n_slots) + " slots of rank " +
                                     std::to_string(max_rank) + ", " + std::to_string(int64_t(bytes / 1048576)) + " MiB)");
  slots_.reset(new Slot[size_t(n_slots)]);
  for (int s = 0; s < n_slots; ++s) slots_[s].adapted.assign(size_t(shapes.n_layer) * kNumModules, 0);
}

int64_t LoraPool::a_bytes(int mi, int R) const { return a_region_bytes(type_, shapes_.n_in[mi], R); }

int64_t LoraPool::b_bytes(int mi, int R) const { return b_region_bytes(type_, shapes_.n_out[mi], R); }

LoraPool::~LoraPool() = default;

void LoraPool::check_slot(int slot) const {
  if (slot < 0 || slot >= n_slots_)
    fail(ErrorKind::InvalidArgument, "LoRA slot " + std::to_string(slot) + " is out of range (the pool has " +
                                         std::to_string(n_slots_) + " slots)");
}

uint8_t* LoraPool::a_region(int slot, int layer, Module m) const {
  return arena_.get() + int64_t(slot) * slot_bytes_ + int64_t(layer) * layer_bytes_ + a_offset_[int(m)];
}

uint8_t* LoraPool::b_region(int slot, int layer, Module m) const {
  return arena_.get() + int64_t(slot) * slot_bytes_ + int64_t(layer) * layer_bytes_ + b_offset_[int(m)];
}

int64_t LoraPool::convert_pair(int slot, const LoraPair& pr, int r, std::vector<float>& row) {
  const int mi = int(pr.module);
  const int R = padded_rank(r);
  const int64_t n_in = shapes_.n_in[mi], n_out = shapes_.n_out[mi];
  uint8_t* a = a_region(slot, pr.layer, pr.module);
  uint8_t* b = b_region(slot, pr.layer, pr.module);
  // Padding first: ranks r..R-1, inputs and outputs past the matrix, are zeros in both layouts.
  std::memset(a, 0, size_t(a_bytes(mi, R)));
  std::memset(b, 0, size_t(b_bytes(mi, R)));
  row.resize(size_t(std::max<int64_t>(n_in, r)));
  const LoraPoolTraits& traits = pool_traits(type_);
  const size_t a_row_bytes = row_size(pr.a.type, n_in);
  const bool a_as_is = pr.a.type == TensorType::F16 && traits.put_a_row_f16;
  for (int j = 0; j < r; ++j) {
    const uint8_t* src = pr.a.data + size_t(j) * a_row_bytes;
    if (a_as_is) {
      check_range_f16(src, n_in, pr.a);
      traits.put_a_row_f16(a, n_in, R, j, src);
      continue;
    }
    row_to_float(pr.a.type, src, n_in, row.data());
    check_range(row.data(), n_in, pr.a);
    traits.put_a_row(a, n_in, R, j, row.data());
  }
  const size_t b_row_bytes = row_size(pr.b.type, r);
  const bool b_as_is = pr.b.type == TensorType::F16 && traits.put_b_row_f16;
  for (int64_t o = 0; o < n_out; ++o) {
    const uint8_t* src = pr.b.data + size_t(o) * b_row_bytes;
    if (b_as_is) {
      check_range_f16(src, r, pr.b);
      traits.put_b_row_f16(b, R, o, src, r);
      continue;
    }
    row_to_float(pr.b.type, src, r, row.data());
    check_range(row.data(), r, pr.b);
    traits.put_b_row(b, R, o, row.data(), r);
  }
  return a_bytes(mi, R) + b_bytes(mi, R);
}

SlotInfo LoraPool::load(int slot, const std::string& path) {
  check_slot(slot);
  const LoraSource src = open_adapter(path, shapes_, max_rank_);
  Slot& s = slots_[slot];
  begin_write(slot);
  try {
    std::fill(s.adapted.begin(), s.adapted.end(), 0);
    std::vector<float> row;  // one source row at a time: the only temporary buffer
    bool has_module[kNumModules] = {};
    int64_t bytes = 0;
    for (const LoraPair& pr : src.pairs) {
      bytes += convert_pair(slot, pr, src.rank, row);
      s.adapted[size_t(pr.layer) * kNumModules + int(pr.module)] = 1;
      has_module[int(pr.module)] = true;
    }
    std::string modules;
    for (int mi = 0; mi < kNumModules; ++mi)
      if (has_module[mi]) modules += std::string(modules.empty() ? "" : ",") + module_short_name(Module(mi));
    std::lock_guard<std::mutex> lock(mu_);
    s.rank = src.rank;
    s.alpha = src.alpha;
    s.factor = src.factor();
    s.bytes = bytes;
    s.path = src.path;
    s.format = src.format;
    s.modules = modules;
    s.state.store(kReady, std::memory_order_release);
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mu_);
    s.state = kFree;
    fail(e.kind, src.path + ": " + e.what());
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    s.state = kFree;
    throw;
  }
  return info(slot);
}

void LoraPool::begin_write(int slot) { set_idle_slot_state(slot, kLoading); }

void LoraPool::unload(int slot) {
  check_slot(slot);
  set_idle_slot_state(slot, kFree);
}

// A slot may be rewritten or freed only when no load is under way and no sequence uses it.
void LoraPool::set_idle_slot_state(int slot, State to) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& s = slots_[slot];
  if (s.state == kLoading) fail(ErrorKind::InvalidArgument, "LoRA slot " + std::to_string(slot) + " is being loaded");
  if (s.refs > 0)
    fail(ErrorKind::InvalidArgument, "LoRA slot " + std::to_string(slot) + " is in use by " +
                                         std::to_string(s.refs.load()) + " sequence(s)");
  s.state = to;
}

SlotInfo LoraPool::info(int slot) const {
  check_slot(slot);
  std::lock_guard<std::mutex> lock(mu_);
  const Slot& s = slots_[slot];
  SlotInfo out;
  out.n_sequences = s.refs;
  if (s.state != kReady) return out;
  out.loaded = true;
  out.rank = s.rank;
  out.alpha = s.alpha;
  out.factor = s.factor;
  out.bytes = s.bytes;
  out.modules = s.modules;
  out.path = s.path;
  out.format = s.format;
  return out;
}

bool LoraPool::is_ready(int slot) const {
  return slot >= 0 && slot < n_slots_ && slots_[slot].state.load(std::memory_order_acquire) == kReady;
}

void LoraPool::acquire(int slot) {
  check_slot(slot);
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_[slot].state != kReady)
    fail(ErrorKind::InvalidArgument, "LoRA slot " + std::to_string(slot) + " has no adapter loaded");
  ++slots_[slot].refs;
}

void LoraPool::release(int slot) {
  check_slot(slot);
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_[slot].refs <= 0)
    fail(ErrorKind::Internal, "LoRA slot " + std::to_string(slot) + " released more often than acquired");
  --slots_[slot].refs;
}

std::vector<int32_t> LoraPool::batch_targets(int n_seq, const int32_t* seq_id, const int32_t* token_slot,
                                             int n_tok) const {
  std::vector<int32_t> target(size_t(n_seq), INT_MIN);
  for (int i = 0; i < n_tok; ++i) {
    const int32_t q = seq_id[i];
    const int32_t sl = token_slot ? token_slot[i] : -1;
    if (q < 0 || q >= n_seq) fail(ErrorKind::InvalidArgument, "sequence id " + std::to_string(q) + " is out of range");
    if (sl < -1 || sl >= n_slots_)
      fail(ErrorKind::InvalidArgument, "token " + std::to_string(i) + ": LoRA slot " + std::to_string(sl) +
                                           " is out of range (the pool has " + std::to_string(n_slots_) + " slots)");
    if (target[q] != INT_MIN && target[q] != sl)
      fail(ErrorKind::InvalidArgument, "sequence " + std::to_string(q) + " has tokens for LoRA slots " +
                                           std::to_string(target[q]) + " and " + std::to_string(sl) + " in one batch");
    target[q] = sl;
  }
  return target;
}

void LoraPool::check_ready_locked(const std::vector<int32_t>& target, const int32_t* seq_slot) const {
  for (size_t q = 0; q < target.size(); ++q)
    if (target[q] >= 0 && !(seq_slot && target[q] == seq_slot[q]) && slots_[target[q]].state != kReady)
      fail(ErrorKind::InvalidArgument, "sequence " + std::to_string(q) + ": LoRA slot " + std::to_string(target[q]) +
                                           " has no adapter loaded");
}

void LoraPool::check_batch(int n_seq, const int32_t* seq_id, const int32_t* token_slot, int n_tok) const {
  const std::vector<int32_t> target = batch_targets(n_seq, seq_id, token_slot, n_tok);
  std::lock_guard<std::mutex> lock(mu_);
  check_ready_locked(target, nullptr);
}

void LoraPool::bind_sequences(int32_t* seq_slot, int n_seq, const int32_t* seq_id, const int32_t* token_slot,
                              int n_tok) {
  const std::vector<int32_t> target = batch_targets(n_seq, seq_id, token_slot, n_tok);
  std::lock_guard<std::mutex> lock(mu_);
  check_ready_locked(target, seq_slot);  // everything is checked before anything changes
  for (int q = 0; q < n_seq; ++q) {
    if (target[q] == INT_MIN || target[q] == seq_slot[q]) continue;
    if (target[q] >= 0) ++slots_[target[q]].refs;
    if (seq_slot[q] >= 0) --slots_[seq_slot[q]].refs;
    seq_slot[q] = target[q];
  }
}

void LoraPool::unbind_sequence(int32_t& seq_slot) {
  if (seq_slot < 0) return;
  release(seq_slot);
  seq_slot = -1;
}

ModuleView LoraPool::view(int slot, int layer, Module m) const {
  const Slot& s = slots_[slot];
  ModuleView v;
  if (!s.adapted[size_t(layer) * kNumModules + int(m)]) return v;
  v.a = a_region(slot, layer, m);
  v.b = b_region(slot, layer, m);
  v.type = type_;
  v.rank = s.rank;
  v.padded = padded_rank(s.rank);
  return v;
}

}  // namespace el::lora
