// Large, long-lived buffers (packed weights, the LoRA slot pool, the KV cache) that the kernels
// stream through: 64-byte aligned, and from 2 MiB up aligned to 2 MiB with huge pages asked for.
//
// Why huge pages: the kernels read these buffers as many short streams (one per adapter,
// sequence or row group); with 4 KiB pages nearly every stream start is also a TLB miss and a
// page walk. The kernel's "always" THP mode does not compact memory for allocations that did
// not ask (defrag=madvise is the common default), so a fragmented machine silently falls back
// to small pages unless we madvise. Measured: the LoRA pool ran its kernels ~2x slower on 4 KiB
// pages inside a forward pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace el {

struct BigBufferFree {
  void operator()(uint8_t* p) const;
};
using BigBuffer = std::unique_ptr<uint8_t[], BigBufferFree>;

// Uninitialised: pages cost no RAM until first written. Null if the allocation fails
// (callers report it with their own words).
BigBuffer try_alloc_big(size_t bytes);

}  // namespace el
