// Large, long-lived buffers (the weights' copies, the LoRA slot pool, the KV cache): 64-byte aligned,
// and from 2 MiB up aligned to 2 MiB, optionally with huge pages asked for (MADV_HUGEPAGE).
//
// Huge pages are asked for only where measured to help: the weights' copies, written once at
// load (filling them takes one page fault per 2 MiB instead of per 4 KiB, most of the repack
// time otherwise) and streamed by every matmul (one TLB miss per 2 MiB; model_loader.cpp), and
// the LoRA slot pool, whose kernels read many short streams, each start otherwise also a TLB
// miss (a batch-8 step with 8 different adapters ran ~1.5 ms faster).
// On the KV cache they brought no gain, and with them on the pool and the KV cache together
// some runs of batch-8 decode without adapters were 5-25% slower on the test VM, so the KV
// cache does not ask.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace el {

struct BigBufferFree {
  void operator()(uint8_t* p) const;
};
using BigBuffer = std::unique_ptr<uint8_t[], BigBufferFree>;

enum class HugePages { Ask, Default };

// Uninitialised: pages cost no RAM until first written. Null if the allocation fails
// (callers report it with their own words).
BigBuffer try_alloc_big(size_t bytes, HugePages huge);

}  // namespace el
