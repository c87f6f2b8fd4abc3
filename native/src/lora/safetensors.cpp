// safetensors parsing and bounds checks; see safetensors.h.
#include "safetensors.h"

#include <cmath>
#include <cstring>

#include "../error.h"
#include "json.h"

namespace el::lora {

namespace {

bool dtype_of(const std::string& s, TensorType& t) {
  if (s == "F32") t = TensorType::F32;
  else if (s == "F16") t = TensorType::F16;
  else if (s == "BF16") t = TensorType::BF16;
  else return false;
  return true;
}

int64_t as_index(const json::Value& v, const std::string& what, const std::string& path) {
  if (v.kind != json::Value::Kind::Number || v.number < 0 || v.number > 9.0e15 || v.number != std::floor(v.number))
    fail(ErrorKind::BadFile, path + ": " + what + " is not a non-negative integer");
  return int64_t(v.number);
}

}  // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->file_ = MappedFile::open(path);
  const uint8_t* base = f->file_->data();
  const size_t size = f->file_->size();
  if (size < 8) fail(ErrorKind::BadFile, path + ": truncated safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | base[k];
  if (header_len > size - 8)
    fail(ErrorKind::BadFile, path + ": truncated safetensors file: header of " + std::to_string(header_len) +
                                 " bytes but only " + std::to_string(size - 8) + " follow");
  const json::Value header = json::parse(reinterpret_cast<const char*>(base + 8), header_len, path + " (header)");
  if (header.kind != json::Value::Kind::Object) fail(ErrorKind::BadFile, path + ": safetensors header is not an object");
  const uint8_t* data = base + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  for (const auto& [name, info] : header.object) {
    if (name == "__metadata__") continue;
    const std::string what = "tensor '" + name + "'";
    const json::Value* dtype = info.find("dtype");
    const json::Value* shape = info.find("shape");
    const json::Value* offsets = info.find("data_offsets");
    if (info.kind != json::Value::Kind::Object || !dtype || dtype->kind != json::Value::Kind::String || !shape ||
        shape->kind != json::Value::Kind::Array || !offsets || offsets->kind != json::Value::Kind::Array ||
        offsets->array.size() != 2)
      fail(ErrorKind::BadFile, path + ": " + what + " needs dtype, shape and data_offsets [begin, end]");
    SafeTensor t;
    t.name = name;
    if (!dtype_of(dtype->string, t.type))
      fail(ErrorKind::Unsupported, path + ": " + what + " has dtype " + dtype->string + " (expected F32, F16 or BF16)");
    uint64_t n = 1;
    for (const json::Value& d : shape->array) {
      const int64_t dim = as_index(d, what + " shape", path);
      if (dim != 0 && n > (uint64_t(1) << 52) / uint64_t(dim)) fail(ErrorKind::BadFile, path + ": " + what + " is too large");
      n *= uint64_t(dim);
      t.shape.push_back(dim);
    }
    const uint64_t begin = uint64_t(as_index(offsets->array[0], what + " data_offsets", path));
    const uint64_t end = uint64_t(as_index(offsets->array[1], what + " data_offsets", path));
    const uint64_t want = n * type_traits(t.type).type_size;
    if (end < begin || end - begin != want)
      fail(ErrorKind::BadFile, path + ": " + what + " data_offsets [" + std::to_string(begin) + ", " +
                                   std::to_string(end) + "] do not hold the " + std::to_string(want) +
                                   " bytes its shape needs");
    if (end > data_size)
      fail(ErrorKind::BadFile, path + ": truncated safetensors file: " + what + " ends at data byte " +
                                   std::to_string(end) + " but the data section has " + std::to_string(data_size));
    t.data = data + begin;
    t.nbytes = size_t(want);
    f->tensors_.push_back(std::move(t));
  }
  return f;
}

}  // namespace el::lora
