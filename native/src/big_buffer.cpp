#include "big_buffer.h"

#include <sys/mman.h>

#include <cstdlib>

namespace el {

void BigBufferFree::operator()(uint8_t* p) const { std::free(p); }

BigBuffer try_alloc_big(size_t bytes, HugePages huge) {
  constexpr size_t kHuge = size_t(2) << 20;
  void* p = nullptr;
  if (posix_memalign(&p, bytes >= kHuge ? kHuge : 64, bytes == 0 ? 64 : bytes) != 0) return nullptr;
#if defined(MADV_HUGEPAGE)
  // Whole 2 MiB spans only: the tail keeps small pages, so nothing past the end is backed.
  if (huge == HugePages::Ask && bytes >= kHuge)
    madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: fine if refused
#endif
  return BigBuffer(static_cast<uint8_t*>(p));
}

}  // namespace el
