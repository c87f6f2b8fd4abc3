// GGUF v2/v3 reader. Layout (all little-endian):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv × (string key, u32 type, value),
//   n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset),
//   padding to general.alignment, then the data section (tensor offsets are relative to it).
// Every read is bounds-checked against the map, so a corrupt file throws instead of crashing.
#include "gguf.h"
#include "type_names.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "round_up.h"

namespace el {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are surely corrupt

// Bytes of one scalar element; 0 for STRING/ARRAY (variable) and unknown types.
size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::BOOL: return 1;
    case GGUFType::UINT16: case GGUFType::INT16: return 2;
    case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::FLOAT32: return 4;
    case GGUFType::UINT64: case GGUFType::INT64: case GGUFType::FLOAT64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GGUFType::FLOAT64); }

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the engine targets little-endian hosts only
  return v;
}

// Widen a scalar element at p into v.i / v.u / v.f.
void decode_scalar(GGUFType t, const uint8_t* p, GGUFValue& v) {
  switch (t) {
    case GGUFType::UINT8: v.u = load<uint8_t>(p); v.i = int64_t(v.u); break;
    case GGUFType::INT8: v.i = load<int8_t>(p); v.u = uint64_t(v.i); break;
    case GGUFType::UINT16: v.u = load<uint16_t>(p); v.i = int64_t(v.u); break;
    case GGUFType::INT16: v.i = load<int16_t>(p); v.u = uint64_t(v.i); break;
    case GGUFType::UINT32: v.u = load<uint32_t>(p); v.i = int64_t(v.u); break;
    case GGUFType::INT32: v.i = load<int32_t>(p); v.u = uint64_t(v.i); break;
    case GGUFType::UINT64: v.u = load<uint64_t>(p); v.i = int64_t(v.u); break;
    case GGUFType::INT64: v.i = load<int64_t>(p); v.u = uint64_t(v.i); break;
    case GGUFType::BOOL: v.u = load<uint8_t>(p) != 0; v.i = int64_t(v.u); break;
    case GGUFType::FLOAT32: v.f = load<float>(p); return;
    case GGUFType::FLOAT64: v.f = load<double>(p); return;
    default: return;
  }
  v.f = t == GGUFType::UINT64 ? double(v.u) : double(v.i);
}

// Cursor over the map; `what` names the item being read for error messages.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, size_t size) : path_(path), p_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return p_ + pos_; }

  [[noreturn]] void bad(const std::string& msg, ErrorKind k = ErrorKind::BadFile) const {
    fail(k, path_ + ": " + msg);
  }

  const uint8_t* take(size_t n, const std::string& what) {
    if (n > remaining())
      bad("truncated file while reading " + what + " (need " + std::to_string(n) + " bytes at offset " +
          std::to_string(pos_) + ", file size " + std::to_string(size_) + ")");
    const uint8_t* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  template <typename T>
  T read(const std::string& what) { return load<T>(take(sizeof(T), what)); }

  std::string read_string(const std::string& what) {
    uint64_t n = read<uint64_t>(what + " (string length)");
    if (n > remaining())
      bad("truncated file while reading " + what + ": string length " + std::to_string(n) + " exceeds the " +
          std::to_string(remaining()) + " bytes left");
    const uint8_t* q = take(size_t(n), what);
    return std::string(reinterpret_cast<const char*>(q), size_t(n));
  }

 private:
  const std::string& path_;
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
};

void read_value(Reader& r, GGUFType type, GGUFValue& v, const std::string& what, int depth);

void read_array(Reader& r, GGUFValue& v, const std::string& what, int depth) {
  uint32_t et = r.read<uint32_t>(what + " (array element type)");
  if (!valid_type(et)) r.bad(what + ": unknown array element type " + std::to_string(et));
  v.arr_type = GGUFType(et);
  v.arr_n = r.read<uint64_t>(what + " (array length)");
  // Bound the length by the bytes left before allocating anything for it.
  size_t min_elem = scalar_size(v.arr_type);
  if (v.arr_type == GGUFType::STRING) min_elem = 8;
  if (v.arr_type == GGUFType::ARRAY) min_elem = 12;
  if (v.arr_n > r.remaining() / min_elem)
    r.bad("truncated file while reading " + what + ": array of " + std::to_string(v.arr_n) + " " +
          gguf_type_name(v.arr_type) + " exceeds the " + std::to_string(r.remaining()) + " bytes left");
  if (v.arr_type == GGUFType::STRING) {
    v.arr_str.reserve(size_t(v.arr_n));
    for (uint64_t k = 0; k < v.arr_n; ++k)
      v.arr_str.push_back(r.read_string(what + "[" + std::to_string(k) + "]"));
  } else if (v.arr_type == GGUFType::ARRAY) {
    if (depth >= kMaxArrayDepth) r.bad(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    v.arr_nested.resize(size_t(v.arr_n));
    for (uint64_t k = 0; k < v.arr_n; ++k)
      read_value(r, GGUFType::ARRAY, v.arr_nested[k], what + "[" + std::to_string(k) + "]", depth + 1);
  } else {
    v.arr_data = r.take(size_t(v.arr_n) * min_elem, what + " (array data)");
  }
}

void read_value(Reader& r, GGUFType type, GGUFValue& v, const std::string& what, int depth) {
  v.type = type;
  if (type == GGUFType::STRING) {
    v.str = r.read_string(what);
  } else if (type == GGUFType::ARRAY) {
    read_array(r, v, what, depth);
  } else {
    decode_scalar(type, r.take(scalar_size(type), what), v);
  }
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& file, const std::string& what) {
  uint64_t out;
  if (__builtin_mul_overflow(a, b, &out)) fail(ErrorKind::BadFile, file + ": size of " + what + " overflows");
  return out;
}

// Array element `k` of a numeric array as a widened scalar.
GGUFValue element(const GGUFValue& v, uint64_t k) {
  GGUFValue e;
  e.type = v.arr_type;
  decode_scalar(v.arr_type, v.arr_data + k * scalar_size(v.arr_type), e);
  return e;
}

}  // namespace

const char* gguf_type_name(GGUFType t) {
  switch (t) {
    case GGUFType::UINT8: return "uint8";
    case GGUFType::INT8: return "int8";
    case GGUFType::UINT16: return "uint16";
    case GGUFType::INT16: return "int16";
    case GGUFType::UINT32: return "uint32";
    case GGUFType::INT32: return "int32";
    case GGUFType::FLOAT32: return "float32";
    case GGUFType::BOOL: return "bool";
    case GGUFType::STRING: return "string";
    case GGUFType::ARRAY: return "array";
    case GGUFType::UINT64: return "uint64";
    case GGUFType::INT64: return "int64";
    case GGUFType::FLOAT64: return "float64";
  }
  return "unknown";
}

bool GGUFValue::is_integer() const {
  return type != GGUFType::FLOAT32 && type != GGUFType::FLOAT64 && type != GGUFType::BOOL &&
         type != GGUFType::STRING && type != GGUFType::ARRAY;
}

bool GGUFValue::is_number() const {
  return is_integer() || type == GGUFType::FLOAT32 || type == GGUFType::FLOAT64;
}

std::string GGUFTensor::shape_str() const {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
  return s + "]";
}

std::unique_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
  std::unique_ptr<GGUFFile> f(new GGUFFile());
  f->path_ = path;
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) fail(ErrorKind::BadFile, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(f->fd_, &st) != 0) fail(ErrorKind::BadFile, path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(ErrorKind::BadFile, path + ": not a regular file");
  f->size_ = size_t(st.st_size);
  if (f->size_ < 4) fail(ErrorKind::BadFile, path + ": truncated file while reading magic (file size " +
                                                 std::to_string(f->size_) + ")");
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, f->fd_, 0);
  if (m == MAP_FAILED) fail(ErrorKind::BadFile, path + ": cannot map: " + std::strerror(errno));
  f->map_ = static_cast<const uint8_t*>(m);

  Reader r(f->path_, f->map_, f->size_);
  uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) r.bad("not a GGUF file (wrong magic)");
  f->version_ = r.read<uint32_t>("version");
  if (f->version_ != 2 && f->version_ != 3)
    r.bad("unsupported GGUF version " + std::to_string(f->version_) + " (supported: 2, 3)", ErrorKind::Unsupported);
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Smallest possible entries (empty key/name): bound counts before reserving memory.
  if (n_kv > r.remaining() / 13)
    r.bad("truncated file: " + std::to_string(n_kv) + " metadata entries cannot fit in the file");

  f->kv_.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string what = "metadata entry " + std::to_string(k);
    std::string key = r.read_string(what + " (key)");
    what = "metadata key '" + key + "'";
    uint32_t t = r.read<uint32_t>(what + " (type)");
    if (!valid_type(t)) r.bad(what + ": unknown value type " + std::to_string(t));
    if (f->kv_index_.count(key)) r.bad("duplicate metadata key '" + key + "'");
    GGUFValue v;
    read_value(r, GGUFType(t), v, what, 0);
    f->kv_index_.emplace(key, f->kv_.size());
    f->kv_.emplace_back(std::move(key), std::move(v));
  }

  if (auto a = f->get_int_opt("general.alignment")) {
    if (*a <= 0 || (*a & (*a - 1)) != 0 || *a > (1 << 30))
      r.bad("metadata key 'general.alignment': " + std::to_string(*a) + " is not a power of two");
    f->alignment_ = uint64_t(*a);
  }

  if (n_tensors > r.remaining() / 24)
    r.bad("truncated file: " + std::to_string(n_tensors) + " tensor infos cannot fit in the file");
  f->tensors_.reserve(size_t(n_tensors));
  // Tensors of types this engine cannot read: the whole table is read first, so the refusal
  // names every such type (a Q5_K_M file holds q5_K and q6_K tensors, say), not just the first.
  std::vector<std::pair<std::string, uint32_t>> unreadable;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GGUFTensor t;
    t.name = r.read_string("tensor info " + std::to_string(k) + " (name)");
    std::string what = "tensor '" + t.name + "'";
    t.n_dims = r.read<uint32_t>(what + " (n_dims)");
    if (t.n_dims > uint32_t(kMaxDims))
      r.bad(what + ": " + std::to_string(t.n_dims) + " dimensions (at most " + std::to_string(kMaxDims) + ")");
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      t.ne[d] = r.read<int64_t>(what + " (shape)");
      if (t.ne[d] < 0) r.bad(what + ": negative dimension " + std::to_string(t.ne[d]));
    }
    uint32_t type_id = r.read<uint32_t>(what + " (type)");
    const TypeTraits* tr = type_traits(type_id);
    if (!tr) {
      unreadable.emplace_back(t.name, type_id);
      r.read<uint64_t>(what + " (offset)");
      continue;
    }
    t.type = TensorType(type_id);
    t.offset = r.read<uint64_t>(what + " (offset)");
    if (t.offset % f->alignment_ != 0)
      r.bad(what + ": data offset " + std::to_string(t.offset) + " is not aligned to " +
            std::to_string(f->alignment_));
    if (t.ne[0] % tr->block_size != 0)
      r.bad(what + ": row length " + std::to_string(t.ne[0]) + " is not a multiple of the " + tr->name +
            " block size " + std::to_string(tr->block_size));
    uint64_t n = uint64_t(t.ne[0]);
    for (int d = 1; d < kMaxDims; ++d) n = checked_mul(n, uint64_t(t.ne[d]), f->path_, what);
    if (n > uint64_t(std::numeric_limits<int64_t>::max())) r.bad(what + ": too many elements");
    t.nbytes = size_t(checked_mul(n / uint64_t(tr->block_size), tr->type_size, f->path_, what));
    if (f->tensor_index_.count(t.name)) r.bad("duplicate tensor name '" + t.name + "'");
    f->tensor_index_.emplace(t.name, f->tensors_.size());
    f->tensors_.push_back(std::move(t));
  }
  if (!unreadable.empty()) r.bad(unreadable_types_message(unreadable), ErrorKind::Unsupported);

  // The data section starts at the next multiple of the alignment after the tensor table.
  uint64_t data_start = round_up(uint64_t(r.pos()), uint64_t(f->alignment_));
  for (GGUFTensor& t : f->tensors_) {
    uint64_t begin = data_start + t.offset;
    if (begin < t.offset || t.nbytes > f->size_ || begin > f->size_ - t.nbytes)
      r.bad("tensor '" + t.name + "' " + t.shape_str() + " out of bounds: bytes [" + std::to_string(begin) + ", " +
            std::to_string(begin + t.nbytes) + ") exceed the file size " + std::to_string(f->size_));
    t.data = f->map_ + begin;
  }
  return f;
}

GGUFFile::~GGUFFile() {
  if (map_) munmap(const_cast<uint8_t*>(map_), size_);
  if (fd_ >= 0) ::close(fd_);
}

const GGUFValue* GGUFFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GGUFTensor* GGUFFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GGUFValue& v,
                             const char* wanted) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GGUFType::ARRAY) got += std::string(" of ") + gguf_type_name(v.arr_type);
  fail(ErrorKind::BadFile, path + ": metadata key '" + key + "' is " + got + ", expected " + wanted);
}
}  // namespace

std::optional<std::string> GGUFFile::get_string_opt(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GGUFType::STRING) wrong_type(path_, key, *v, "string");
  return v->str;
}

std::string GGUFFile::get_string(const std::string& key) const {
  auto s = get_string_opt(key);
  if (!s) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  return *s;
}

std::optional<int64_t> GGUFFile::get_int_opt(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(path_, key, *v, "an integer");
  if (v->type == GGUFType::UINT64 && v->u > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(ErrorKind::BadFile, path_ + ": metadata key '" + key + "' value " + std::to_string(v->u) + " is too large");
  return v->i;
}

int64_t GGUFFile::get_int(const std::string& key) const {
  auto i = get_int_opt(key);
  if (!i) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  return *i;
}

std::optional<double> GGUFFile::get_float_opt(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(path_, key, *v, "a number");
  return v->f;
}

double GGUFFile::get_float(const std::string& key) const {
  auto f = get_float_opt(key);
  if (!f) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  return *f;
}

std::optional<bool> GGUFFile::get_bool_opt(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GGUFType::BOOL) wrong_type(path_, key, *v, "bool");
  return v->u != 0;
}

std::vector<std::string> GGUFFile::get_string_array(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  if (v->type != GGUFType::ARRAY || v->arr_type != GGUFType::STRING) wrong_type(path_, key, *v, "array of string");
  return v->arr_str;
}

std::vector<float> GGUFFile::get_float_array(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  GGUFValue probe;
  probe.type = v->arr_type;
  if (v->type != GGUFType::ARRAY || !probe.is_number()) wrong_type(path_, key, *v, "array of numbers");
  std::vector<float> out(size_t(v->arr_n));
  for (uint64_t k = 0; k < v->arr_n; ++k) out[k] = float(element(*v, k).f);
  return out;
}

std::vector<int64_t> GGUFFile::get_int_array(const std::string& key) const {
  const GGUFValue* v = find(key);
  if (!v) fail(ErrorKind::BadFile, path_ + ": missing metadata key '" + key + "'");
  GGUFValue probe;
  probe.type = v->arr_type;
  if (v->type != GGUFType::ARRAY || !probe.is_integer()) wrong_type(path_, key, *v, "array of integers");
  std::vector<int64_t> out(size_t(v->arr_n));
  for (uint64_t k = 0; k < v->arr_n; ++k) {
    GGUFValue e = element(*v, k);
    if (v->arr_type == GGUFType::UINT64 && e.u > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(ErrorKind::BadFile, path_ + ": metadata key '" + key + "' element " + std::to_string(k) + " is too large");
    out[k] = e.i;
  }
  return out;
}

}  // namespace el
