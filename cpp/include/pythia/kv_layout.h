// Where one KV page lives in each pool: the index arithmetic that the CPU copy path
// (kv_copy.cc) and the CUDA kernels (cuda/kv_transfer.cu) share, so CPU tests exercise it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PYTHIA_HOST_DEVICE __host__ __device__
#else
#define PYTHIA_HOST_DEVICE
#endif

namespace pythia::kv_layout {

/// Device pool, "layer-first": 2 * num_layers buffers (layer l's K is buffer 2l, its V 2l + 1),
/// each [num_slots, kv_heads, head_dim] slot-major, so page p is `page_bytes` contiguous bytes
/// at this offset of every buffer (the engine's KVPool).
PYTHIA_HOST_DEVICE inline int64_t layer_first_offset(int64_t page, int64_t page_bytes) {
  return page * page_bytes;
}

/// Host pool, "page-first": one buffer in which page p holds its chunks of every buffer of the
/// device layout back to back (buffer b at chunk b), so a page moves to or from host memory
/// as one contiguous run and a host page is a unit of allocation (HiCache's page_first).
PYTHIA_HOST_DEVICE inline int64_t page_first_offset(int64_t page, int32_t buffer, int32_t num_buffers,
                                                    int64_t page_bytes) {
  return (page * num_buffers + buffer) * page_bytes;
}

/// Bytes of one page in one device buffer.
inline int64_t page_bytes(int64_t page_size, int64_t kv_heads, int64_t head_dim, int64_t elem_bytes) {
  return page_size * kv_heads * head_dim * elem_bytes;
}

}  // namespace pythia::kv_layout
