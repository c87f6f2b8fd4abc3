// Shared by the fuzz targets: inputs as files (the readers map files, so an input goes into a
// memfd opened by its /proc/self/fd path: no disk writes), the folder of fixed data files, and
// touching a mapped range so that ASan sees every byte a reader claims is inside the file.
// Only el::Error may leave the code under test: any other exception aborts, as a finding.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lora/lora_source.h"

namespace fuzz {

class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("el-fuzz", 0);
    if (fd_ < 0) std::abort();
    size_t off = 0;
    while (off < size) {
      const ssize_t n = write(fd_, data + off, size - off);
      if (n <= 0) std::abort();
      off += size_t(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Writes a fixed data file a target needs beside its input (an adapter folder's other half).
inline void write_file(const std::string& path, const void* data, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}

// native/fuzz/vocab (the vocabulary GGUFs): EL_FUZZ_DATA, else next to the source tree.
inline std::string data_dir() {
  if (const char* d = std::getenv("EL_FUZZ_DATA")) return d;
  if (const char* root = std::getenv("EL_SOURCE_DIR")) return std::string(root) + "/native/fuzz/vocab";
  return EL_FUZZ_DATA_DIR;  // set by CMake
}

// Reads the first and last byte of [p, p + n): out of bounds is an ASan report.
inline uint32_t touch(const uint8_t* p, size_t n) {
  if (!p || n == 0) return 0;
  volatile uint8_t a = p[0], b = p[n - 1];
  return uint32_t(a) + b;
}

// The shapes of the seed adapters' model (scripts/fuzz-seeds.ts: 32 wide, ffn 64, 2 heads / 1 KV).
inline el::lora::ModelShapes seed_model_shapes() {
  el::lora::ModelShapes s;
  s.arch = "llama";
  s.n_layer = 1;
  s.n_head = 2;
  s.n_head_kv = 1;
  const int64_t n_in[el::lora::kNumModules] = {32, 32, 32, 32, 32, 32, 64};
  const int64_t n_out[el::lora::kNumModules] = {32, 16, 16, 32, 64, 64, 32};
  for (int m = 0; m < el::lora::kNumModules; ++m) s.n_in[m] = n_in[m], s.n_out[m] = n_out[m];
  return s;
}

}  // namespace fuzz
