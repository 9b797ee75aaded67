// KV page gather/scatter between the layer-first device pool and the page-first pinned host pool.
#include <cuda_runtime.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "kv_transfer.h"
#include "pythia/kv_copy.h"
#include "pythia/kv_layout.h"

namespace pythia::cuda {
namespace {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

/// One block per (pair, buffer): blockIdx.x the pair, blockIdx.y the buffer. 16-byte accesses
/// when the page chunk allows them, else bytes.
__global__ void kv_pages_layer_first_page_first(const uint64_t* buffers, int32_t num_buffers, uint8_t* host,
                                                int64_t page_bytes, const int32_t* pairs, bool to_host) {
  const int64_t pair = blockIdx.x;
  const int32_t buffer = static_cast<int32_t>(blockIdx.y);
  const int64_t device_page = to_host ? pairs[2 * pair] : pairs[2 * pair + 1];
  const int64_t host_page = to_host ? pairs[2 * pair + 1] : pairs[2 * pair];
  uint8_t* device = reinterpret_cast<uint8_t*>(buffers[buffer]) + kv_layout::layer_first_offset(device_page, page_bytes);
  uint8_t* pinned = host + kv_layout::page_first_offset(host_page, buffer, num_buffers, page_bytes);
  const uint8_t* src = to_host ? device : pinned;
  uint8_t* dst = to_host ? pinned : device;
  const bool vectorized = page_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                          reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (vectorized) {
    const int4* s = reinterpret_cast<const int4*>(src);
    int4* d = reinterpret_cast<int4*>(dst);
    for (int64_t i = threadIdx.x; i < page_bytes / 16; i += blockDim.x) d[i] = s[i];
  } else {
    for (int64_t i = threadIdx.x; i < page_bytes; i += blockDim.x) dst[i] = src[i];
  }
}

constexpr int kThreads = 256;

}  // namespace

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

void copy_kv_pages_layer_first_page_first(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages,
                                          uint64_t host, int64_t num_host_pages, int64_t page_bytes,
                                          const int32_t* pairs, int64_t num_pair_entries, bool to_host,
                                          uint64_t stream) {
  check_kv_copy(kv_pools_at(device_buffers, num_device_pages, host, num_host_pages, page_bytes), pairs,
                num_pair_entries, to_host);
  if (num_pair_entries == 0) return;
  if (device_buffers.size() > 65535) throw std::invalid_argument("KV copy: more than 65535 device buffers");
  auto s = reinterpret_cast<cudaStream_t>(stream);
  // The buffer table and the pairs go to the device in one stream-ordered upload, freed after the launch.
  const size_t table_bytes = device_buffers.size() * sizeof(uint64_t);
  const size_t pair_bytes = static_cast<size_t>(num_pair_entries) * sizeof(int32_t);
  std::vector<uint8_t> staging(table_bytes + pair_bytes);
  std::memcpy(staging.data(), device_buffers.data(), table_bytes);
  std::memcpy(staging.data() + table_bytes, pairs, pair_bytes);
  void* args = nullptr;
  check_cuda(cudaMallocAsync(&args, staging.size(), s), "KV copy: cudaMallocAsync");
  check_cuda(cudaMemcpyAsync(args, staging.data(), staging.size(), cudaMemcpyHostToDevice, s),
             "KV copy: uploading its arguments");
  const dim3 grid(static_cast<unsigned>(num_pair_entries / 2), static_cast<unsigned>(device_buffers.size()));
  kv_pages_layer_first_page_first<<<grid, kThreads, 0, s>>>(
      static_cast<const uint64_t*>(args), static_cast<int32_t>(device_buffers.size()), reinterpret_cast<uint8_t*>(host),
      page_bytes, reinterpret_cast<const int32_t*>(static_cast<uint8_t*>(args) + table_bytes), to_host);
  check_cuda(cudaGetLastError(), "KV copy: kernel launch");
  check_cuda(cudaFreeAsync(args, s), "KV copy: cudaFreeAsync");
  // `staging` may go now: an upload from pageable memory returns once the bytes are staged.
}

void memcpy_kv_pages_layer_first_page_first(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages,
                                            uint64_t host, int64_t num_host_pages, int64_t page_bytes,
                                            const int32_t* pairs, int64_t num_pair_entries, bool to_host,
                                            uint64_t stream) {
  check_kv_copy(kv_pools_at(device_buffers, num_device_pages, host, num_host_pages, page_bytes), pairs,
                num_pair_entries, to_host);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const int32_t num_buffers = static_cast<int32_t>(device_buffers.size());
  for (int64_t i = 0; i < num_pair_entries; i += 2) {
    const int64_t device_page = to_host ? pairs[i] : pairs[i + 1];
    const int64_t host_page = to_host ? pairs[i + 1] : pairs[i];
    for (int32_t b = 0; b < num_buffers; ++b) {
      auto* device = reinterpret_cast<uint8_t*>(device_buffers[b]) + kv_layout::layer_first_offset(device_page, page_bytes);
      auto* pinned = reinterpret_cast<uint8_t*>(host) + kv_layout::page_first_offset(host_page, b, num_buffers, page_bytes);
      check_cuda(cudaMemcpyAsync(to_host ? pinned : device, to_host ? device : pinned, static_cast<size_t>(page_bytes),
                                 to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, s),
                 "KV copy: cudaMemcpyAsync");
    }
  }
}

}  // namespace pythia::cuda
