// safetensors reader: 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, an optional "__metadata__" object, then the data.
// Every tensor is checked to lie inside the file with the size its shape implies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../tensor_types.h"
#include "mapped_file.h"

namespace el::lora {

struct SafeTensor {
  std::string name;
  TensorType type = TensorType::F32;  // from dtype F32 / F16 / BF16
  std::vector<int64_t> shape;         // row-major (torch order): shape.back() is contiguous
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Throws el::Error naming the path and what is wrong (truncated, bad header, dtype).
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::unique_ptr<MappedFile> file_;
  std::vector<SafeTensor> tensors_;
};

}  // namespace el::lora
