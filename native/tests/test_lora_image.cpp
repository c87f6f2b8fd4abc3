// Slot images (el_lora_export / el_lora_import): for every pool type, an adapter imported from an
// image holds the same bytes as the slot it was exported from and, on stories260K through the C
// API, gives bit-identical logits to loading the file; images for another pool type, model shape
// or rank, and damaged or truncated images, are refused with a message and leave the slot as it was.
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "check.h"
#include "edgelora.h"
#include "error.h"
#include "gguf.h"
#include "lora/lora_pool.h"
#include "lora_fixtures.h"

using namespace el::lora;
using namespace lora_fixtures;
using el::ErrorKind;

namespace {

std::string g_dir;
const LoraPoolType kTypes[] = {LoraPoolType::F16, LoraPoolType::Q8, LoraPoolType::Q4};
const std::vector<Module> kAll = {Module::Q, Module::K, Module::V, Module::O, Module::Gate, Module::Up, Module::Down};

std::string adapter_file(const std::string& name, const Adapter& ad) { return write_adapter_gguf(g_dir, name, ad); }

std::vector<uint8_t> export_of(LoraPool& pool, int slot) {
  std::vector<uint8_t> img(pool.image_size(slot));
  CHECK(pool.export_image(slot, img.data(), img.size()) == img.size());
  return img;
}

// Every value a view exposes (padding included) is the same in both slots.
bool same_views(const LoraPool& pool, int s0, int s1, const ModelShapes& sh) {
  for (int l = 0; l < sh.n_layer; ++l)
    for (int m = 0; m < kNumModules; ++m) {
      const ModuleView a = pool.view(s0, l, Module(m)), b = pool.view(s1, l, Module(m));
      if (!a.a != !b.a) return false;
      if (!a.a) continue;
      if (a.rank != b.rank || a.padded != b.padded) return false;
      const int64_t n_out = (sh.n_out[m] + 7) / 8 * 8;
      for (int j = 0; j < a.padded; ++j) {
        for (int64_t i = 0; i < sh.n_in[m]; ++i)
          if (a.a_value(j, i) != b.a_value(j, i)) return false;
        for (int64_t o = 0; o < n_out; ++o)
          if (a.b_value(o, j) != b.b_value(o, j)) return false;
      }
    }
  return true;
}

void test_round_trip(LoraPoolType type) {
  const ModelShapes sh = model_shapes(2, 64, 32, 96);
  LoraPool pool(sh, 3, 16, type);
  // Two modules only, rank 5: the image carries the adapted regions at the adapter's padded rank.
  const Adapter ad = random_adapter(sh, 5, {Module::Q, Module::Down}, 11);
  const SlotInfo loaded = pool.load(0, adapter_file(std::string("rt_") + pool_type_name(type), ad));
  const std::vector<uint8_t> img = export_of(pool, 0);
  CHECK(img.size() >= size_t(loaded.bytes) && img.size() < size_t(loaded.bytes) + 1024);
  // Into a slot that held another adapter: the import replaces it entirely.
  pool.load(1, adapter_file(std::string("other_") + pool_type_name(type), random_adapter(sh, 16, kAll, 12)));
  const SlotInfo imported = pool.import_image(1, img.data(), img.size());
  CHECK(imported.loaded && imported.rank == 5 && imported.alpha == loaded.alpha && imported.factor == loaded.factor);
  CHECK(imported.bytes == loaded.bytes && imported.modules == "q,down" && imported.path == loaded.path);
  CHECK_MSG(same_views(pool, 0, 1, sh), "%s: imported slot differs from the exported one", pool_type_name(type));
  CHECK_MSG(export_of(pool, 1) == img, "%s: re-exported image differs", pool_type_name(type));

  // Refusals, each leaving slot 2 free and slot 1 as it was.
  std::vector<uint8_t> bad = img;
  expect_error([&] { pool.import_image(2, img.data(), img.size() - 1); }, ErrorKind::InvalidArgument, "truncated");
  bad[0] = 'X';
  expect_error([&] { pool.import_image(2, bad.data(), bad.size()); }, ErrorKind::InvalidArgument, "bad magic");
  expect_error([&] { pool.import_image(2, img.data(), 10); }, ErrorKind::InvalidArgument, "shorter than its header");
  CHECK(!pool.info(2).loaded);
  for (LoraPoolType other : kTypes) {
    if (other == type) continue;
    LoraPool p2(sh, 1, 16, other);
    expect_error([&] { p2.import_image(0, img.data(), img.size()); }, ErrorKind::InvalidArgument,
                 std::string("made for a ") + pool_type_name(type) + " pool, this pool is " + pool_type_name(other));
  }
  LoraPool wider(model_shapes(2, 64, 32, 128), 1, 16, type);
  expect_error([&] { wider.import_image(0, img.data(), img.size()); }, ErrorKind::InvalidArgument, "another model shape");
  LoraPool deeper(model_shapes(3, 64, 32, 96), 1, 16, type);
  expect_error([&] { deeper.import_image(0, img.data(), img.size()); }, ErrorKind::InvalidArgument, "another model shape");
  LoraPool narrow(sh, 1, 4, type);  // same layout, ranks up to 4
  expect_error([&] { narrow.import_image(0, img.data(), img.size()); }, ErrorKind::InvalidArgument, "rank 5");
  // A referenced slot is neither exported-over nor imported into.
  pool.acquire(1);
  expect_error([&] { pool.import_image(1, img.data(), img.size()); }, ErrorKind::InvalidArgument, "in use");
  pool.release(1);
  pool.unload(0);
  expect_error([&] { pool.export_image(0, bad.data(), bad.size()); }, ErrorKind::InvalidArgument, "no adapter loaded");
  std::vector<uint8_t> small(img.size() - 1);
  expect_error([&] { pool.export_image(1, small.data(), small.size()); }, ErrorKind::InvalidArgument, "the image needs");
  CHECK(same_views(pool, 1, 1, sh) && pool.info(1).rank == 5 && pool.info(1).n_sequences == 0);
}

// Through the C API on a real model: the logits after a prompt with the imported slot equal, bit
// for bit, those with the slot loaded from the file, for every pool type.
void test_stories260k_logits(el_lora_pool_type type) {
  const std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (access(path.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "SKIP stories260K image test: %s not found\n", path.c_str());
    return;
  }
  el_error err{};
  el_model* model = nullptr;
  const el_model_params mp{path.c_str()};
  CHECK(el_model_load(&mp, &model, &err) == EL_OK);
  if (!model) return;
  el_context_params cp = el_context_default_params();
  cp.n_threads = 1;
  cp.n_ctx = 64;
  cp.n_seq_max = 2;
  cp.kv_type = EL_KV_F32;
  cp.lora_slots = 2;
  cp.lora_max_rank = 8;
  cp.lora_pool_type = type;
  el_context* ctx = nullptr;
  CHECK(el_context_new(model, &cp, &ctx, &err) == EL_OK);
  const ModelShapes sh = shapes_from_gguf(*el::GGUFFile::open(path));
  const Adapter ad = random_adapter(sh, 8, kAll, 99);
  const std::string file = adapter_file("stories_" + std::to_string(int(type)), ad);
  el_lora_info li{};
  CHECK(el_lora_load(ctx, 0, file.c_str(), &li, &err) == EL_OK);
  size_t n = 0;
  CHECK(el_lora_export(ctx, 0, nullptr, 0, &n, &err) == EL_OK && n > 0);
  std::vector<uint8_t> img(n);
  CHECK(el_lora_export(ctx, 0, img.data(), 1, &n, &err) == EL_ERR_INVALID_ARGUMENT && n == img.size());
  CHECK(el_lora_export(ctx, 0, img.data(), img.size(), &n, &err) == EL_OK && n == img.size());
  CHECK(el_lora_import(ctx, 1, img.data(), img.size(), &li, &err) == EL_OK && li.rank == 8);
  CHECK(el_lora_import(ctx, 1, img.data(), img.size() - 8, &li, &err) == EL_ERR_INVALID_ARGUMENT &&
        std::strstr(err.message, "truncated"));
  const int32_t tokens[] = {1, 403, 407, 261, 378};
  std::vector<float> logits[2];
  for (int32_t slot = 0; slot < 2; ++slot) {
    int32_t pos[5], seq[5], sl[5];
    for (int i = 0; i < 5; ++i) pos[i] = i, seq[i] = slot, sl[i] = slot;
    el_batch b{5, tokens, pos, seq, sl, nullptr, nullptr};
    CHECK(el_decode(ctx, &b, &err) == EL_OK);
    const float* row = el_get_logits(ctx, 0);
    if (row) logits[slot].assign(row, row + 512);
  }
  CHECK_MSG(!logits[0].empty() && logits[0] == logits[1], "pool type %d: imported slot's logits differ", int(type));
  el_context_free(ctx);
  el_model_free(model);
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/el-test-lora-image-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_dir = tmpl;
  for (LoraPoolType t : kTypes) test_round_trip(t);
  for (el_lora_pool_type t : {EL_LORA_POOL_F16, EL_LORA_POOL_Q8, EL_LORA_POOL_Q4}) test_stories260k_logits(t);
  std::system(("rm -rf " + g_dir).c_str());
  return el_test::test_exit_code();
}
