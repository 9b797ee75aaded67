// Launchers of the KV page copies between a layer-first device pool and a page-first pinned host
// pool (cpp/include/pythia/kv_layout.h). Plain C++ types only, so that the pybind11 module
// (module.cc) is compiled by the host compiler.
#pragma once

#include <cstdint>
#include <vector>

namespace pythia::cuda {

/// \brief Copies pages for flattened (source, destination) pairs, every buffer of every layer in
/// one kernel launch on `stream` (a cudaStream_t; 0: the default stream): device -> host when
/// `to_host` ((device page, host page) pairs), host -> device otherwise. `device_buffers` are the
/// 2 * num_layers device addresses (K0, V0, K1, ...); `host` is pinned (mapped) memory, which the
/// kernel reads and writes directly. Asynchronous: the caller orders or waits on `stream`.
/// Throws std::invalid_argument for a bad argument (the core's check_kv_copy), std::runtime_error
/// for a CUDA error.
void copy_kv_pages_layer_first_page_first(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages,
                                          uint64_t host, int64_t num_host_pages, int64_t page_bytes,
                                          const int32_t* pairs, int64_t num_pair_entries, bool to_host,
                                          uint64_t stream);

/// \brief The same copies as one cudaMemcpyAsync per page and buffer: the reference that the
/// kernel is checked and measured against.
void memcpy_kv_pages_layer_first_page_first(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages,
                                            uint64_t host, int64_t num_host_pages, int64_t page_bytes,
                                            const int32_t* pairs, int64_t num_pair_entries, bool to_host,
                                            uint64_t stream);

/// \brief Whether a CUDA device is usable here (false without a GPU or a driver).
bool device_available();

}  // namespace pythia::cuda
