// KV page copies between a layer-first device pool and a page-first host pool, on the CPU
// (the CUDA kernels in cuda/ do the same on a GPU, with the same layouts and checks).
#pragma once

#include <cstdint>
#include <vector>

namespace pythia {

/// \brief The two pools of a copy, by raw pointer: `device_buffers` holds the 2 * num_layers
/// layer-first buffers (kv_layout.h), `host` the page-first host buffer.
struct KvPools {
  std::vector<uint8_t*> device_buffers;
  int64_t num_device_pages = 0;
  uint8_t* host = nullptr;
  int64_t num_host_pages = 0;
  /// Bytes of one page in one device buffer.
  int64_t page_bytes = 0;
};

/// \brief KvPools from raw addresses (torch's data_ptr(), as the Python side passes them).
KvPools kv_pools_at(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages, uint64_t host,
                    int64_t num_host_pages, int64_t page_bytes);

/// \brief Throws std::invalid_argument naming the problem: a null buffer, a page size that is not
/// positive, an odd number of pair entries, or a page id outside its pool.
void check_kv_copy(const KvPools& pools, const int32_t* pairs, int64_t num_pair_entries, bool to_host);

/// \brief Copies pages for flattened (source, destination) pairs: device -> host when `to_host`
/// ((device page, host page) pairs), host -> device otherwise ((host page, device page)).
/// Checks its arguments first (check_kv_copy).
void copy_kv_pages(const KvPools& pools, const int32_t* pairs, int64_t num_pair_entries, bool to_host);

}  // namespace pythia
