// GGUF v2/v3 reader over a read-only memory map.
// Parses the header, every metadata key/value (all value types, nested arrays), and the
// tensor table; checks alignment and that every tensor lies inside the file. Any
// truncated, corrupt or unsupported input throws el::Error naming what is wrong.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "error.h"
#include "tensor_types.h"

namespace el {

enum class GGUFType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GGUFType t);

struct GGUFValue {
  GGUFType type = GGUFType::UINT8;
  // Scalars (any integer type widened; bool as 0/1).
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string str;                  // STRING
  GGUFType arr_type = GGUFType::UINT8;  // ARRAY element type
  uint64_t arr_n = 0;                // ARRAY length
  const uint8_t* arr_data = nullptr; // ARRAY of numbers: raw little-endian elements inside the map
  std::vector<std::string> arr_str;  // ARRAY of strings
  std::vector<GGUFValue> arr_nested; // ARRAY of arrays (rare; kept for completeness)

  bool is_integer() const;
  bool is_number() const;  // integer or float
};

struct GGUFTensor {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (row) dimension
  TensorType type = TensorType::F32;
  uint64_t offset = 0;           // relative to the data section
  const uint8_t* data = nullptr; // inside the map
  size_t nbytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_str() const;  // e.g. "[896, 4864]"
};

class GGUFFile {
 public:
  // Maps and parses `path`; throws el::Error (BadFile / Unsupported) naming the problem.
  static std::unique_ptr<GGUFFile> open(const std::string& path);
  ~GGUFFile();
  GGUFFile(const GGUFFile&) = delete;
  GGUFFile& operator=(const GGUFFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GGUFValue>>& metadata() const { return kv_; }
  const GGUFValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters. The required forms throw el::Error naming the key when it is missing
  // or of an incompatible type; the optional forms return nullopt when missing (but still
  // throw on a wrong type). Integer getters accept any integer type that fits.
  std::string get_string(const std::string& key) const;
  std::optional<std::string> get_string_opt(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  std::optional<int64_t> get_int_opt(const std::string& key) const;
  double get_float(const std::string& key) const;  // accepts any number type
  std::optional<double> get_float_opt(const std::string& key) const;
  std::optional<bool> get_bool_opt(const std::string& key) const;
  // Arrays: element-typed copies. Throw when the key is not an array of that kind.
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;   // any number array
  std::vector<int64_t> get_int_array(const std::string& key) const;   // any integer array

  const std::vector<GGUFTensor>& tensors() const { return tensors_; }
  const GGUFTensor* tensor(const std::string& name) const;  // nullptr when absent

 private:
  GGUFFile() = default;
  std::string path_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GGUFTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace el
