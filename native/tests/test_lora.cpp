// LoRA slot pool and batched apply: every kernel path against a double-precision reference
// on random adapters (ranks 1..64, odd shapes, mixed slots per token, scale 0), the slot
// state and reference-count rules, and loading while another slot is in use.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "check.h"
#include "error.h"
#include "kernels/kernels.h"
#include "lora/lora_apply.h"
#include "lora/lora_pool.h"
#include "lora_fixtures.h"

using namespace el::lora;
using namespace lora_fixtures;

namespace {

std::string g_dir;

ModelShapes shapes_of(int64_t d, int64_t kv, int64_t ff) { return model_shapes(2, d, kv, ff); }

ModelShapes odd_shapes() { return shapes_of(37, 13, 53); }

// Batch inputs x and outputs y0 (n_tok rows, `stride` floats apart), uniform in [-1, 1).
struct BatchRows {
  std::vector<float> x, y0;
};
BatchRows random_rows(int n_tok, int64_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  BatchRows b{std::vector<float>(size_t(n_tok * stride)), std::vector<float>(size_t(n_tok * stride))};
  for (float& v : b.x) v = u(rng);
  for (float& v : b.y0) v = u(rng);
  return b;
}

const std::vector<Module> kAll = {Module::Q, Module::K, Module::V, Module::O, Module::Gate, Module::Up, Module::Down};

std::string write_gguf(const std::string& name, const Adapter& ad) { return write_adapter_gguf(g_dir, name, ad); }

const Pair* find_pair(const Adapter& ad, int layer, Module m) {
  for (const Pair& p : ad.pairs)
    if (p.layer == layer && p.module == m) return &p;
  return nullptr;
}

// y_ref = y0 + coeff * B (A x), in double.
void reference(const Pair& p, double coeff, const float* x, const float* y0, std::vector<double>& out) {
  out.assign(size_t(p.n_out), 0);
  std::vector<double> t(size_t(p.rank), 0);
  for (int j = 0; j < p.rank; ++j)
    for (int64_t i = 0; i < p.n_in; ++i) t[j] += double(p.a[j * p.n_in + i]) * x[i];
  for (int64_t o = 0; o < p.n_out; ++o) {
    double acc = 0;
    for (int j = 0; j < p.rank; ++j) acc += double(p.b[o * p.rank + j]) * t[j];
    out[o] = y0[o] + coeff * acc;
  }
}

// Against double math on the adapter's values. F16 pool: float rounding only. Q8 pool: the
// quantization of A, B, x and t, a fraction of a percent of the LoRA term.
void test_apply_all_paths(LoraPoolType type) {
  const ModelShapes s = odd_shapes();
  LoraPool pool(s, 4, 64, type);
  const int ranks[4] = {1, 4, 16, 64};
  std::vector<Adapter> ads;
  for (int k = 0; k < 4; ++k) {
    ads.push_back(random_adapter(s, ranks[k], k == 0 ? std::vector<Module>{Module::Q, Module::V, Module::Down} : kAll,
                                 100 + k, 4.0f + k));
    pool.load(k, write_gguf("apply" + std::to_string(k), ads.back()));
  }
  const int n_tok = 12;
  const int32_t slot[n_tok] = {0, -1, 1, 2, 3, 1, -1, 3, 0, 2, 2, 3};
  const float scale[n_tok] = {1.0f, 1.0f, 0.5f, 1.25f, 0.75f, 2.0f, 1.0f, 1.0f, 0.3f, 0.0f, 1.5f, -1.0f};
  const int64_t stride = 61;  // wider than any row
  const auto [x, y0] = random_rows(n_tok, stride, 7);

  LoraBatchPlan plan;
  plan_lora_batch(pool, slot, scale, n_tok, plan);
  CHECK(plan.n_positions() == 9);  // 12 tokens minus two without a slot and one with scale 0

  for (const el::kernels::KernelSet* ks : el::kernels::available()) {
    double worst = 0;
    int exact_failures = 0;
    std::vector<float> scratch;
    for (int layer = 0; layer < s.n_layer; ++layer)
      for (Module m : kAll) {
        const int64_t n_out = s.n_out[int(m)];
        std::vector<float> y = y0, y_split = y0;
        lora_apply(*ks, pool, plan, layer, m, x.data(), stride, y.data(), stride, scratch);
        // The same work split as threads would split it: positions for shrink, rows for expand.
        std::vector<float> t(lora_scratch_floats(pool, plan));
        const int half = plan.n_positions() / 2;
        std::vector<el::block_q8_0> xq(size_t(n_tok * lora_input_blocks(s.n_in[int(m)])));
        lora_quantize_input(*ks, pool, plan, x.data(), stride, s.n_in[int(m)], xq.data());
        lora_shrink(*ks, pool, plan, layer, m, x.data(), stride, t.data(), 0, half, xq.data());
        lora_shrink(*ks, pool, plan, layer, m, x.data(), stride, t.data(), half, plan.n_positions(), xq.data());
        const int64_t cuts[4] = {0, 8, (n_out / 2 + 3) / 8 * 8, n_out};  // thread slices start at multiples of 8
        for (int c = 0; c < 3; ++c)
          lora_expand(*ks, pool, plan, layer, m, t.data(), y_split.data(), stride, cuts[c], cuts[c + 1]);

        for (int i = 0; i < n_tok; ++i) {
          const Pair* p = slot[i] >= 0 ? find_pair(ads[slot[i]], layer, m) : nullptr;
          if (!p || scale[i] == 0.0f) {  // untouched, bit for bit
            exact_failures += std::memcmp(&y[i * stride], &y0[i * stride], n_out * sizeof(float)) != 0;
            exact_failures += std::memcmp(&y_split[i * stride], &y0[i * stride], n_out * sizeof(float)) != 0;
            continue;
          }
          const double coeff = double(scale[i]) * ads[slot[i]].alpha / p->rank;
          std::vector<double> ref;
          reference(*p, coeff, &x[i * stride], &y0[i * stride], ref);
          // Bound: float rounding relative to the sum of absolute terms.
          const double norm = 1.0 + std::fabs(coeff) * p->rank * p->n_in * 0.25;
          for (int64_t o = 0; o < n_out; ++o) {
            worst = std::max(worst, std::fabs(y[i * stride + o] - ref[o]) / norm);
            worst = std::max(worst, std::fabs(y_split[i * stride + o] - ref[o]) / norm);
          }
        }
        // Padding past the row end is never written.
        for (int i = 0; i < n_tok; ++i)
          exact_failures += std::memcmp(&y[i * stride + n_out], &y0[i * stride + n_out],
                                        (stride - n_out) * sizeof(float)) != 0;
      }
    const double bound = type == LoraPoolType::Q8 ? 5e-4 : type == LoraPoolType::Q4 ? 1e-2 : 2e-6;
    CHECK_MSG(worst < bound, "pool %s, path %s: worst normalised error %g", pool_type_name(type), ks->name, worst);
    CHECK_MSG(exact_failures == 0, "path %s: %d rows changed that must not", ks->name, exact_failures);
    std::fprintf(stderr, "pool %-3s path %-12s worst normalised error %.3g\n", pool_type_name(type), ks->name, worst);
  }

  // No slots at all (or all -1): an empty plan, nothing to do.
  plan_lora_batch(pool, nullptr, nullptr, n_tok, plan);
  CHECK(plan.empty());
}

// Every path computes in the scalar reference's operation order, so all give the same bits;
// and a token's result does not depend on the tokens that share its kernel calls (so batched
// equals unbatched). Groups of 1..7 tokens (kernel calls of 1..4), rows past several expand
// blocks with a ragged end, slices starting at multiples of 8, odd input sizes.
void test_paths_same_bits(const ModelShapes& s, LoraPoolType type) {
  LoraPool pool(s, 3, 24, type);
  const Adapter ads[3] = {random_adapter(s, 16, kAll, 21, 8.0f), random_adapter(s, 13, kAll, 22, 3.0f),
                          random_adapter(s, 24, kAll, 23, 2.0f)};
  for (int k = 0; k < 3; ++k) pool.load(k, write_gguf("bits" + std::to_string(k), ads[k]));
  constexpr int n_tok = 12;
  const int32_t slot[n_tok] = {0, 1, 0, 0, -1, 1, 0, 0, 0, 0, 2, 1};
  const float scale[n_tok] = {1.0f, 0.5f, -2.0f, 0.75f, 1.0f, 1.5f, 1.0f, 0.25f, 3.0f, -1.0f, 1.0f, 2.0f};
  const int64_t stride = 1103;
  const auto [x, y0] = random_rows(n_tok, stride, 9);
  LoraBatchPlan plan;
  plan_lora_batch(pool, slot, scale, n_tok, plan);
  // One token per adapter: the expand reads the two of padded rank 16 side by side in one call.
  const int32_t single_slots[n_tok] = {0, 1, -1, 2, -1, -1, -1, -1, -1, -1, -1, -1};
  LoraBatchPlan singles;
  plan_lora_batch(pool, single_slots, scale, n_tok, singles);

  // y after shrink + expand, with expand split at `cuts` as threads would split it.
  auto run = [&](const el::kernels::KernelSet& ks, const LoraBatchPlan& pl, Module m, const std::vector<int64_t>& cuts) {
    std::vector<float> t(lora_scratch_floats(pool, pl)), y = y0;
    std::vector<el::block_q8_0> xq(size_t(n_tok * lora_input_blocks(s.n_in[int(m)])));
    lora_quantize_input(ks, pool, pl, x.data(), stride, s.n_in[int(m)], xq.data());
    lora_shrink(ks, pool, pl, 1, m, x.data(), stride, t.data(), 0, pl.n_positions(), xq.data());
    for (size_t c = 0; c + 1 < cuts.size(); ++c)
      lora_expand(ks, pool, pl, 1, m, t.data(), y.data(), stride, cuts[c], cuts[c + 1]);
    return y;
  };
  const el::kernels::KernelSet& ref = el::kernels::scalar();
  for (Module m : kAll) {
    const int64_t n_out = s.n_out[int(m)];
    const std::vector<float> y_ref = run(ref, plan, m, {0, n_out});
    const std::vector<float> y_singles_ref = run(ref, singles, m, {0, n_out});
    // Each token alone, through its own one-token plan.
    std::vector<float> y_alone = y0;
    for (int i = 0; i < n_tok; ++i) {
      int32_t one_slot[n_tok];
      std::fill(one_slot, one_slot + n_tok, -1);
      one_slot[i] = slot[i];
      LoraBatchPlan single;
      plan_lora_batch(pool, one_slot, scale, n_tok, single);
      const std::vector<float> y = run(ref, single, m, {0, n_out});
      std::memcpy(&y_alone[i * stride], &y[i * stride], size_t(stride) * sizeof(float));
    }
    CHECK_MSG(y_alone == y_ref, "module %d: tokens alone differ from the batch", int(m));
    for (const el::kernels::KernelSet* ks : el::kernels::available()) {
      std::vector<int64_t> cuts{0, n_out};
      for (int64_t c : {int64_t(16), (n_out / 3 + 7) / 8 * 8, int64_t(520)})
        if (c > 0 && c < n_out) cuts.push_back(c);
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      const std::vector<float> y_singles = run(*ks, singles, m, cuts);
      CHECK_MSG(std::memcmp(y_singles.data(), y_singles_ref.data(), y_singles.size() * sizeof(float)) == 0,
                "pool %s, path %s, module %d: one token per adapter: bits differ from the scalar reference",
                pool_type_name(type), ks->name, int(m));
      const std::vector<float> y = run(*ks, plan, m, cuts);
      CHECK_MSG(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0,
                "pool %s, path %s, module %d: bits differ from the scalar reference", pool_type_name(type), ks->name,
                int(m));
    }
  }
}

void test_slot_rules() {
  const ModelShapes s = odd_shapes();
  LoraPool pool(s, 3, 8);
  const Adapter a = random_adapter(s, 8, {Module::Q, Module::V, Module::Down}, 1, 16.0f);
  const std::string pa = write_gguf("rules_a", a);
  const std::string pb = write_gguf("rules_b", random_adapter(s, 2, kAll, 2, 2.0f));

  SlotInfo info = pool.load(0, pa);
  CHECK(info.loaded && info.rank == 8 && info.alpha == 16.0f && info.factor == 2.0f);
  CHECK(info.modules == "q,v,down");
  // Occupied bytes: outputs padded to chunks of 8 (rank 8 needs no rank padding).
  CHECK(info.bytes == int64_t(8) * 2 * s.n_layer * ((37 + 40) + (37 + 16) + (53 + 40)));
  {
    // The same adapter in an 8-bit pool: A in blocks of 32 inputs (34 bytes per rank), B in
    // chunks of 8 outputs (16 + 8 x rank bytes); a rank the pool cannot hold exactly is refused.
    LoraPool q8(s, 1, 8, LoraPoolType::Q8);
    const auto a_bytes = [](int64_t n_in) { return (n_in + 31) / 32 * 34 * 8; };
    const auto b_bytes = [](int64_t n_out) { return (n_out + 7) / 8 * (16 + 8 * 8); };
    CHECK(q8.load(0, pa).bytes ==
          s.n_layer * (a_bytes(37) + b_bytes(37) + a_bytes(37) + b_bytes(13) + a_bytes(53) + b_bytes(37)));
    expect_error([&] { LoraPool big(s, 1, el::kernels::kLoraQ8MaxRank + 1, LoraPoolType::Q8); }, el::ErrorKind::InvalidArgument,
                 "ranks up to");
    // And in a 4-bit pool: the same blocks and chunks with half the quant bytes.
    LoraPool q4(s, 1, 8, LoraPoolType::Q4);
    const auto a4_bytes = [](int64_t n_in) { return (n_in + 31) / 32 * 18 * 8; };
    const auto b4_bytes = [](int64_t n_out) { return (n_out + 7) / 8 * (16 + 4 * 8); };
    CHECK(q4.load(0, pa).bytes ==
          s.n_layer * (a4_bytes(37) + b4_bytes(37) + a4_bytes(37) + b4_bytes(13) + a4_bytes(53) + b4_bytes(37)));
    expect_error([&] { LoraPool big(s, 1, el::kernels::kLoraQ8MaxRank + 1, LoraPoolType::Q4); }, el::ErrorKind::InvalidArgument,
                 "q4 LoRA pool supports ranks up to");
  }
  CHECK(info.path == pa && info.format == "gguf" && info.n_sequences == 0);
  CHECK(!pool.info(1).loaded && !pool.is_ready(1) && pool.is_ready(0));

  pool.acquire(0);
  CHECK(pool.info(0).n_sequences == 1);
  expect_error([&] { pool.unload(0); }, el::ErrorKind::InvalidArgument, "in use by 1 sequence");
  expect_error([&] { pool.load(0, pb); }, el::ErrorKind::InvalidArgument, "in use by 1 sequence");
  expect_error([&] { pool.acquire(1); }, el::ErrorKind::InvalidArgument, "slot 1 has no adapter loaded");
  expect_error([&] { pool.acquire(3); }, el::ErrorKind::InvalidArgument, "out of range");
  pool.release(0);
  expect_error([&] { pool.release(0); }, el::ErrorKind::Internal, "released more often");

  // A file that fails validation leaves the slot's adapter in place.
  expect_error([&] { pool.load(0, g_dir + "/missing.gguf"); }, el::ErrorKind::BadFile, "missing.gguf");
  CHECK(pool.info(0).loaded && pool.info(0).path == pa);
  pool.load(0, pb);  // replace an unreferenced adapter
  CHECK(pool.info(0).rank == 2);
  pool.unload(0);
  CHECK(!pool.info(0).loaded);
  pool.load(0, pa);
  pool.load(1, pb);

  // Per-batch sequence binding.
  int32_t seq_slot[3] = {-1, -1, -1};
  {
    const int32_t seq[3] = {0, 0, 1}, sl[3] = {0, 0, 1};
    pool.bind_sequences(seq_slot, 3, seq, sl, 3);
    CHECK(seq_slot[0] == 0 && seq_slot[1] == 1 && seq_slot[2] == -1);
    CHECK(pool.info(0).n_sequences == 1 && pool.info(1).n_sequences == 1);
  }
  {
    const int32_t seq[2] = {0, 1}, sl[2] = {0, 0};  // seq 1 moves from slot 1 to 0
    pool.bind_sequences(seq_slot, 3, seq, sl, 2);
    CHECK(seq_slot[1] == 0 && pool.info(0).n_sequences == 2 && pool.info(1).n_sequences == 0);
  }
  {
    const int32_t seq[2] = {2, 2}, sl[2] = {0, 1};
    expect_error([&] { pool.bind_sequences(seq_slot, 3, seq, sl, 2); }, el::ErrorKind::InvalidArgument,
                 "sequence 2 has tokens for LoRA slots 0 and 1");
  }
  {
    const int32_t seq[2] = {2, 0}, sl[2] = {1, 2};  // slot 2 is free: nothing may change
    expect_error([&] { pool.check_batch(3, seq, sl, 2); }, el::ErrorKind::InvalidArgument,
                 "LoRA slot 2 has no adapter loaded");
    const int32_t ok_slots[2] = {1, 0};
    pool.check_batch(3, seq, ok_slots, 2);  // checks only
    CHECK(pool.info(1).n_sequences == 0);
    expect_error([&] { pool.bind_sequences(seq_slot, 3, seq, sl, 2); }, el::ErrorKind::InvalidArgument,
                 "LoRA slot 2 has no adapter loaded");
    CHECK(seq_slot[0] == 0 && seq_slot[2] == -1 && pool.info(1).n_sequences == 0);
  }
  {
    const int32_t seq[1] = {0}, sl[1] = {-1};  // back to no adapter
    pool.bind_sequences(seq_slot, 3, seq, sl, 1);
    CHECK(seq_slot[0] == -1 && pool.info(0).n_sequences == 1);
  }
  expect_error([&] { pool.unload(0); }, el::ErrorKind::InvalidArgument, "in use");
  pool.unbind_sequence(seq_slot[1]);
  pool.unbind_sequence(seq_slot[2]);  // no slot: nothing to drop
  CHECK(seq_slot[1] == -1 && pool.info(0).n_sequences == 0);
  pool.unload(0);
}

// Loading into one slot while decode-like work reads another gives that work unchanged results.
void test_load_while_applying() {
  const ModelShapes s = odd_shapes();
  LoraPool pool(s, 2, 16);
  pool.load(0, write_gguf("busy0", random_adapter(s, 16, kAll, 11)));
  const std::string other = write_gguf("busy1", random_adapter(s, 16, kAll, 12));
  pool.acquire(0);
  const int n_tok = 4;
  const int32_t slot[n_tok] = {0, 0, 0, 0};
  std::vector<float> x(size_t(n_tok * 53), 0.5f), y_first;
  LoraBatchPlan plan;
  plan_lora_batch(pool, slot, nullptr, n_tok, plan);
  std::vector<float> scratch;
  const el::kernels::KernelSet& ks = el::kernels::best();
  auto run = [&] {
    std::vector<float> y(size_t(n_tok * 53), 0.0f);
    for (int layer = 0; layer < s.n_layer; ++layer)
      for (Module m : kAll) lora_apply(ks, pool, plan, layer, m, x.data(), 53, y.data(), 53, scratch);
    return y;
  };
  y_first = run();
  std::atomic<bool> done{false};
  std::thread loader([&] {
    for (int k = 0; k < 5; ++k) {
      pool.load(1, other);
      pool.unload(1);
    }
    done = true;
  });
  int mismatches = 0, rounds = 0;
  while (!done || rounds == 0) {
    mismatches += run() != y_first;
    ++rounds;
  }
  loader.join();
  CHECK_MSG(mismatches == 0, "%d of %d rounds differ", mismatches, rounds);
  pool.release(0);
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/el-test-lora-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_dir = tmpl;
  for (LoraPoolType type : {LoraPoolType::F16, LoraPoolType::Q8, LoraPoolType::Q4}) {
    test_apply_all_paths(type);
    test_paths_same_bits(shapes_of(64, 40, 1100), type);
    test_paths_same_bits(odd_shapes(), type);
  }
  test_slot_rules();
  test_load_while_applying();
  std::system(("rm -rf " + g_dir).c_str());
  return el_test::test_exit_code();
}
