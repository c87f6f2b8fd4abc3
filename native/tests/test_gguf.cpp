// GGUF reader: a real model file (stories260K) plus small files written here, valid and
// corrupted in each way the reader must reject with a message naming the problem.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <vector>

#include "check.h"
#include "gguf.h"

using el::GGUFFile;
using el::GGUFType;

namespace {

// ---- a tiny GGUF writer -----------------------------------------------------

struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& put(T v) {
    size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const Bytes& o) {
    b.insert(b.end(), o.b.begin(), o.b.end());
    return *this;
  }
};

constexpr uint64_t kAuto = ~uint64_t(0);

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  uint32_t type;
  std::vector<uint8_t> data;
  uint64_t offset = kAuto;  // kAuto: next aligned offset, data written there
};

struct Spec {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;  // must match general.alignment when that key is present
  std::vector<std::pair<std::string, Bytes>> kv;  // key -> (u32 type + value)
  std::vector<TensorSpec> tensors;
};

// Where the parts of a serialized file start, for the truncation tests.
struct Layout {
  size_t kv_begin = 0, tensors_begin = 0, tensors_end = 0, data_begin = 0;
};

std::vector<uint8_t> serialize(const Spec& s, Layout* layout = nullptr) {
  Bytes f;
  f.put(s.magic).put(s.version).put<uint64_t>(s.tensors.size()).put<uint64_t>(s.kv.size());
  size_t kv_begin = f.b.size();
  for (const auto& [key, value] : s.kv) f.str(key).raw(value);
  size_t tensors_begin = f.b.size();
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const TensorSpec& t : s.tensors) {
    uint64_t off = t.offset == kAuto ? next : t.offset;
    if (t.offset == kAuto) next = (next + t.data.size() + s.alignment - 1) / s.alignment * s.alignment;
    offsets.push_back(off);
    f.str(t.name).put<uint32_t>(t.ne.size());
    for (int64_t n : t.ne) f.put(n);
    f.put(t.type).put(off);
  }
  size_t tensors_end = f.b.size();
  while (f.b.size() % s.alignment) f.put<uint8_t>(0);
  size_t data_begin = f.b.size();
  for (size_t k = 0; k < s.tensors.size(); ++k) {
    if (s.tensors[k].offset != kAuto) continue;
    size_t at = data_begin + offsets[k];
    if (f.b.size() < at) f.b.resize(at, 0);
    f.b.insert(f.b.end(), s.tensors[k].data.begin(), s.tensors[k].data.end());
  }
  if (layout) *layout = {kv_begin, tensors_begin, tensors_end, data_begin};
  return f.b;
}

template <typename T>
Bytes scalar(GGUFType t, T v) {
  Bytes b;
  b.put(uint32_t(t)).put(v);
  return b;
}
Bytes string_value(const std::string& s) {
  Bytes b;
  b.put(uint32_t(GGUFType::STRING)).str(s);
  return b;
}

std::vector<uint8_t> floats(std::initializer_list<float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.begin(), out.size());
  return out;
}

// A valid file exercising every metadata value type, nested arrays and two tensor types.
Spec valid_spec() {
  Spec s;
  s.alignment = 64;
  s.kv.emplace_back("general.architecture", string_value("llama"));
  s.kv.emplace_back("general.alignment", scalar(GGUFType::UINT32, uint32_t(64)));
  s.kv.emplace_back("v.u8", scalar(GGUFType::UINT8, uint8_t(200)));
  s.kv.emplace_back("v.i8", scalar(GGUFType::INT8, int8_t(-5)));
  s.kv.emplace_back("v.u16", scalar(GGUFType::UINT16, uint16_t(60000)));
  s.kv.emplace_back("v.i16", scalar(GGUFType::INT16, int16_t(-30000)));
  s.kv.emplace_back("v.u32", scalar(GGUFType::UINT32, uint32_t(4000000000u)));
  s.kv.emplace_back("v.i32", scalar(GGUFType::INT32, int32_t(-7)));
  s.kv.emplace_back("v.f32", scalar(GGUFType::FLOAT32, 0.25f));
  s.kv.emplace_back("v.bool", scalar(GGUFType::BOOL, uint8_t(1)));
  s.kv.emplace_back("v.u64", scalar(GGUFType::UINT64, uint64_t(1) << 40));
  s.kv.emplace_back("v.i64", scalar(GGUFType::INT64, -(int64_t(1) << 40)));
  s.kv.emplace_back("v.f64", scalar(GGUFType::FLOAT64, -1.5));
  s.kv.emplace_back("v.big", scalar(GGUFType::UINT64, ~uint64_t(0)));
  Bytes ints;
  ints.put(uint32_t(GGUFType::ARRAY)).put(uint32_t(GGUFType::INT32)).put<uint64_t>(3);
  ints.put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
  s.kv.emplace_back("v.ints", ints);
  Bytes fl;
  fl.put(uint32_t(GGUFType::ARRAY)).put(uint32_t(GGUFType::FLOAT32)).put<uint64_t>(2).put(0.5f).put(-4.0f);
  s.kv.emplace_back("v.floats", fl);
  Bytes strs;
  strs.put(uint32_t(GGUFType::ARRAY)).put(uint32_t(GGUFType::STRING)).put<uint64_t>(3);
  strs.str("<s>").str("").str("h\xc3\xa9llo");
  s.kv.emplace_back("tok.list", strs);
  Bytes nested;  // [[1, 2], ["x"]]
  nested.put(uint32_t(GGUFType::ARRAY)).put(uint32_t(GGUFType::ARRAY)).put<uint64_t>(2);
  nested.put(uint32_t(GGUFType::UINT16)).put<uint64_t>(2).put<uint16_t>(1).put<uint16_t>(2);
  nested.put(uint32_t(GGUFType::STRING)).put<uint64_t>(1).str("x");
  s.kv.emplace_back("v.nested", nested);
  s.tensors.push_back({"a", {4, 2}, 0, floats({1, 2, 3, 4, 5, 6, 7, 8})});
  std::vector<uint8_t> q8(2 * 34, 7);  // Q8_0: two rows of one 32-element block
  s.tensors.push_back({"b", {32, 2}, 8, q8});
  return s;
}

// ---- running the reader on a file -----------------------------------------

std::string g_dir;

std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = g_dir + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

// The error message (empty when the file opened) and its kind.
struct Outcome {
  std::string msg;
  el::ErrorKind kind = el::ErrorKind::Internal;
  bool failed() const { return !msg.empty(); }
};

Outcome try_open(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = write_file(name, bytes);
  try {
    GGUFFile::open(path);
    return {};
  } catch (const el::Error& e) {
    return {e.what(), e.kind};
  }
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Expects `bytes` to be rejected with a message naming the file and every part given.
void expect_error(const std::string& name, const std::vector<uint8_t>& bytes,
                  std::initializer_list<const char*> parts, el::ErrorKind kind = el::ErrorKind::BadFile) {
  Outcome o = try_open(name, bytes);
  CHECK_MSG(o.failed(), "%s: opened without error", name.c_str());
  if (!o.failed()) return;
  CHECK_MSG(contains(o.msg, name), "%s: message does not name the file: %s", name.c_str(), o.msg.c_str());
  for (const char* p : parts) CHECK_MSG(contains(o.msg, p), "%s: message lacks '%s': %s", name.c_str(), p, o.msg.c_str());
  CHECK_MSG(o.kind == kind, "%s: error kind %d, expected %d", name.c_str(), int(o.kind), int(kind));
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const el::Error& e) {
    return e.what();
  }
  return "";
}

// ---- tests -----------------------------------------------------------------

void test_stories() {
  std::string path = el_test::source_path("../shared/models/stories260K.gguf");
  if (access(path.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "SKIP test_stories: %s not found\n", path.c_str());
    return;
  }
  auto f = GGUFFile::open(path);
  CHECK(f->version() == 3);
  CHECK(f->alignment() == 32);
  CHECK(f->metadata().size() == 19);
  CHECK(f->metadata()[0].first == "tokenizer.ggml.tokens");
  CHECK(f->get_string("general.architecture") == "llama");
  CHECK(f->get_string("tokenizer.ggml.model") == "llama");
  CHECK(f->get_int("llama.embedding_length") == 64);
  CHECK(f->get_int("llama.block_count") == 5);
  CHECK(f->get_int("llama.attention.head_count") == 8);
  CHECK(f->get_int("llama.attention.head_count_kv") == 4);
  CHECK(f->get_int("llama.feed_forward_length") == 172);
  CHECK(f->get_int("llama.rope.dimension_count") == 8);
  CHECK(f->get_int("tokenizer.ggml.bos_token_id") == 1);
  CHECK(f->get_int("tokenizer.ggml.eos_token_id") == 2);
  CHECK(f->get_int("tokenizer.ggml.padding_token_id") == 4294967295LL);
  CHECK_NEAR(f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  CHECK(!f->get_bool_opt("tokenizer.ggml.add_bos_token").has_value());

  auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  CHECK(tokens.size() == 512);
  CHECK(tokens.size() == 512 && tokens[0] == "<unk>" && tokens[1] == "<s>" && tokens[2] == "</s>");
  CHECK(tokens.size() == 512 && tokens[12] == "<0x09>" && tokens[13] == "<0x0A>");
  CHECK(f->get_float_array("tokenizer.ggml.scores").size() == 512);
  auto types = f->get_int_array("tokenizer.ggml.token_type");
  CHECK(types.size() == 512 && types[0] == 2 && types[1] == 3);

  CHECK(f->tensors().size() == 48);
  const el::GGUFTensor* emb = f->tensor("token_embd.weight");
  CHECK(emb && emb->shape_str() == "[64, 512]" && emb->type == el::TensorType::F32);
  CHECK(emb && emb->nbytes == 64 * 512 * 4);
  const el::GGUFTensor* down = f->tensor("blk.4.ffn_down.weight");
  CHECK(down && down->n_dims == 2 && down->ne[0] == 172 && down->ne[1] == 64);
  const el::GGUFTensor* norm = f->tensor("output_norm.weight");
  CHECK(norm && norm->n_dims == 1 && norm->n_elements() == 64);
  // The last tensor ends exactly at the end of the file.
  const el::GGUFTensor& last = f->tensors().back();
  CHECK(last.name == "blk.4.ffn_norm.weight");
  CHECK(emb && last.data + last.nbytes == emb->data - 14176 + f->file_size());
  CHECK(f->tensor("nope") == nullptr);

  CHECK(contains(error_of([&] { f->get_string("llama.block_count"); }), "'llama.block_count'"));
  CHECK(contains(error_of([&] { f->get_int("llama.missing"); }), "'llama.missing'"));
  CHECK(contains(error_of([&] { f->get_int_array("tokenizer.ggml.tokens"); }), "'tokenizer.ggml.tokens'"));
}

void test_valid_synthetic() {
  for (uint32_t version : {2u, 3u}) {
    Spec s = valid_spec();
    s.version = version;
    std::string path = write_file("valid_v" + std::to_string(version) + ".gguf", serialize(s));
    std::unique_ptr<GGUFFile> f;
    std::string err = error_of([&] { f = GGUFFile::open(path); });
    CHECK_MSG(err.empty(), "%s", err.c_str());
    if (!f) continue;
    CHECK(f->version() == version);
    CHECK(f->alignment() == 64);
    CHECK(f->get_int("v.u8") == 200);
    CHECK(f->get_int("v.i8") == -5);
    CHECK(f->get_int("v.u16") == 60000);
    CHECK(f->get_int("v.i16") == -30000);
    CHECK(f->get_int("v.u32") == 4000000000LL);
    CHECK(f->get_int("v.i32") == -7);
    CHECK(f->get_float("v.f32") == 0.25);
    CHECK(f->get_float("v.i32") == -7.0);
    CHECK(f->get_bool_opt("v.bool") == true);
    CHECK(f->get_int("v.u64") == (int64_t(1) << 40));
    CHECK(f->get_int("v.i64") == -(int64_t(1) << 40));
    CHECK(f->get_float("v.f64") == -1.5);
    CHECK(f->find("v.big") && f->find("v.big")->u == ~uint64_t(0));
    CHECK(contains(error_of([&] { f->get_int("v.big"); }), "'v.big'"));
    CHECK(contains(error_of([&] { f->get_int("v.f32"); }), "'v.f32'"));
    CHECK(contains(error_of([&] { f->get_bool_opt("v.u8"); }), "'v.u8'"));
    CHECK(f->get_int_array("v.ints") == std::vector<int64_t>({1, -2, 3}));
    CHECK(f->get_float_array("v.ints") == std::vector<float>({1, -2, 3}));
    CHECK(f->get_float_array("v.floats") == std::vector<float>({0.5f, -4.0f}));
    CHECK(contains(error_of([&] { f->get_int_array("v.floats"); }), "'v.floats'"));
    CHECK(f->get_string_array("tok.list") == std::vector<std::string>({"<s>", "", "h\xc3\xa9llo"}));
    const el::GGUFValue* n = f->find("v.nested");
    CHECK(n && n->type == GGUFType::ARRAY && n->arr_type == GGUFType::ARRAY && n->arr_nested.size() == 2);
    if (n && n->arr_nested.size() == 2) {
      CHECK(n->arr_nested[0].arr_type == GGUFType::UINT16 && n->arr_nested[0].arr_n == 2);
      CHECK(n->arr_nested[1].arr_str == std::vector<std::string>({"x"}));
    }
    // Metadata keeps file order.
    CHECK(f->metadata().front().first == "general.architecture" && f->metadata().back().first == "v.nested");

    const el::GGUFTensor* a = f->tensor("a");
    const el::GGUFTensor* b = f->tensor("b");
    CHECK(a && a->shape_str() == "[4, 2]" && a->nbytes == 32 && a->offset == 0);
    CHECK(b && b->type == el::TensorType::Q8_0 && b->nbytes == 68 && b->offset == 64);
    if (a) {
      float v[8];
      std::memcpy(v, a->data, sizeof v);
      CHECK(v[0] == 1 && v[7] == 8);
      CHECK(reinterpret_cast<uintptr_t>(a->data) % 64 == 0);  // the map is page aligned
    }
    if (b) CHECK(b->data[0] == 7 && b->data[67] == 7);
  }
}

void test_truncated() {
  Layout l;
  std::vector<uint8_t> good = serialize(valid_spec(), &l);
  // Cut points in the header, the metadata, the tensor table: each must be reported as truncated.
  std::vector<size_t> cuts = {0, 2, 4, 7, 12, 20, l.kv_begin + 5, l.kv_begin + 30, l.tensors_begin - 3,
                              l.tensors_begin + 1, l.tensors_begin + 20, l.tensors_end - 9, l.tensors_end - 1};
  for (size_t cut : cuts) {
    std::vector<uint8_t> bytes(good.begin(), good.begin() + cut);
    expect_error("trunc_" + std::to_string(cut) + ".gguf", bytes, {"truncated"});
  }
  // A cut inside one key's value names that key.
  size_t in_strings = 0;
  for (size_t k = l.kv_begin; k + 5 < good.size(); ++k)
    if (std::memcmp(&good[k], "h\xc3\xa9ll", 5) == 0) in_strings = k + 2;
  CHECK(in_strings > 0);
  expect_error("trunc_in_key.gguf", std::vector<uint8_t>(good.begin(), good.begin() + in_strings),
               {"truncated", "'tok.list'"});
  // A cut in the data section leaves the last tensor outside the file.
  expect_error("trunc_data.gguf", std::vector<uint8_t>(good.begin(), good.end() - 1), {"'b'", "out of bounds"});
}

void test_corrupt() {
  Spec s = valid_spec();
  s.magic = 0x46554746;
  expect_error("magic.gguf", serialize(s), {"magic"});

  for (uint32_t v : {1u, 4u}) {
    s = valid_spec();
    s.version = v;
    expect_error("version" + std::to_string(v) + ".gguf", serialize(s), {("version " + std::to_string(v)).c_str()},
                 el::ErrorKind::Unsupported);
  }

  s = valid_spec();
  s.tensors[1].type = 99;
  expect_error("type99.gguf", serialize(s), {"'b'", "99"}, el::ErrorKind::Unsupported);
  // A real type this engine does not read is named as llama.cpp names it, with the supported list.
  s = valid_spec();
  s.tensors[1].type = 23;
  expect_error("iq4_xs.gguf", serialize(s), {"tensor 'b' has type iq4_xs (id 23), which this engine cannot read", "(supported: f32, f16, ", "q8_0"},
               el::ErrorKind::Unsupported);
  s.tensors[0].type = 16;  // every such tensor is named, per type
  expect_error("two_types.gguf", serialize(s),
               {"tensor 'a' has type iq2_xxs (id 16); tensor 'b' has type iq4_xs (id 23), which this engine cannot read"},
               el::ErrorKind::Unsupported);

  s = valid_spec();
  s.tensors[1].offset = 64 * 1000;
  expect_error("beyond_eof.gguf", serialize(s), {"'b'", "out of bounds"});

  s = valid_spec();
  s.tensors[1].offset = 40;
  expect_error("misaligned.gguf", serialize(s), {"'b'", "aligned"});

  s = valid_spec();
  s.tensors[1].ne = {32, 2, 1, 1, 1};
  expect_error("ndims.gguf", serialize(s), {"'b'", "dimensions"});

  s = valid_spec();
  s.tensors[1].ne = {16, 2};
  expect_error("block.gguf", serialize(s), {"'b'", "block size"});

  s = valid_spec();
  s.tensors[1].ne = {int64_t(1) << 40, int64_t(1) << 40};
  expect_error("overflow.gguf", serialize(s), {"'b'"});

  s = valid_spec();
  s.tensors[1].name = "a";
  expect_error("dup_tensor.gguf", serialize(s), {"duplicate tensor name 'a'"});

  s = valid_spec();
  s.kv.emplace_back("v.u8", scalar(GGUFType::UINT8, uint8_t(1)));
  expect_error("dup_key.gguf", serialize(s), {"duplicate metadata key 'v.u8'"});

  s = valid_spec();
  s.kv.emplace_back("v.weird", scalar(GGUFType(13), uint8_t(1)));
  expect_error("kv_type.gguf", serialize(s), {"'v.weird'", "type 13"});

  s = valid_spec();
  s.kv[1].second = scalar(GGUFType::UINT32, uint32_t(48));
  expect_error("alignment.gguf", serialize(s), {"'general.alignment'", "power of two"});

  // Lengths far beyond the file are rejected before anything is allocated for them.
  s = valid_spec();
  Bytes huge;
  huge.put(uint32_t(GGUFType::ARRAY)).put(uint32_t(GGUFType::STRING)).put<uint64_t>(uint64_t(1) << 60);
  s.kv.emplace_back("v.huge", huge);
  expect_error("huge_array.gguf", serialize(s), {"'v.huge'", "truncated"});

  s = valid_spec();
  Bytes longstr;
  longstr.put(uint32_t(GGUFType::STRING)).put<uint64_t>(uint64_t(1) << 62);
  s.kv.emplace_back("v.long", longstr);
  expect_error("huge_string.gguf", serialize(s), {"'v.long'", "truncated"});

  std::string err = error_of([] { GGUFFile::open(g_dir + "/absent.gguf"); });
  CHECK(contains(err, "absent.gguf") && contains(err, "cannot open"));
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/el_test_gguf_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  g_dir = tmpl;
  test_stories();
  test_valid_synthetic();
  test_truncated();
  test_corrupt();
  std::string cleanup = "rm -rf '" + g_dir + "'";
  if (std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", g_dir.c_str());
  return el_test::test_exit_code();
}
