// A whole file mapped read-only (adapter files are read in place, never copied whole).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace el::lora {

class MappedFile {
 public:
  // Throws el::Error(BadFile) naming the path and the system error.
  static std::unique_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace el::lora
