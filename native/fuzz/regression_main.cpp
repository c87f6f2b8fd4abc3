// Runs a fuzz target over files without libFuzzer (the regular build, under ctest): every file
// given, or every file in the folders given. A crash or sanitizer report fails the test; so does
// an exception other than el::Error escaping (std::terminate).
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

int run_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 1;
}

int run(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "%s: not found\n", path.c_str());
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  int n = 0;
  DIR* d = opendir(path.c_str());
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name == ".gitkeep") continue;
    n += run(path + "/" + name);
  }
  closedir(d);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    const int k = run(argv[i]);
    if (k < 0) return 2;
    n += k;
  }
  std::fprintf(stderr, "%d inputs ran without a crash\n", n);
  return 0;
}
