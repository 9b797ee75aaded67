#include "pythia/kv_copy.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pythia/kv_layout.h"

namespace pythia {

KvPools kv_pools_at(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages, uint64_t host,
                    int64_t num_host_pages, int64_t page_bytes) {
  KvPools pools;
  for (uint64_t address : device_buffers) pools.device_buffers.push_back(reinterpret_cast<uint8_t*>(address));
  pools.num_device_pages = num_device_pages;
  pools.host = reinterpret_cast<uint8_t*>(host);
  pools.num_host_pages = num_host_pages;
  pools.page_bytes = page_bytes;
  return pools;
}

void check_kv_copy(const KvPools& pools, const int32_t* pairs, int64_t num_pair_entries, bool to_host) {
  if (pools.page_bytes <= 0) throw std::invalid_argument("KV copy: page_bytes must be positive");
  if (pools.device_buffers.empty()) throw std::invalid_argument("KV copy: no device buffers");
  for (size_t b = 0; b < pools.device_buffers.size(); ++b) {
    if (pools.device_buffers[b] == nullptr) {
      throw std::invalid_argument("KV copy: device buffer " + std::to_string(b) + " is null");
    }
  }
  if (pools.host == nullptr) throw std::invalid_argument("KV copy: the host buffer is null");
  if (num_pair_entries % 2 != 0) {
    throw std::invalid_argument("KV copy: " + std::to_string(num_pair_entries) +
                                " entries do not make (source, destination) pairs");
  }
  if (num_pair_entries > 0 && pairs == nullptr) throw std::invalid_argument("KV copy: pairs are null");
  for (int64_t i = 0; i < num_pair_entries; ++i) {
    const bool is_device = (i % 2 == 0) == to_host;  // to host: sources are device pages
    const int64_t limit = is_device ? pools.num_device_pages : pools.num_host_pages;
    if (pairs[i] < 0 || pairs[i] >= limit) {
      throw std::invalid_argument("KV copy: " + std::string(is_device ? "device" : "host") + " page " +
                                  std::to_string(pairs[i]) + " is outside its pool of " + std::to_string(limit));
    }
  }
}

namespace {

/// Copies pairs [first, last) (pair indices, not entries).
void copy_range(const KvPools& pools, const int32_t* pairs, int64_t first, int64_t last, bool to_host) {
  const int32_t num_buffers = static_cast<int32_t>(pools.device_buffers.size());
  const int64_t bytes = pools.page_bytes;
  for (int64_t i = 2 * first; i < 2 * last; i += 2) {
    const int64_t device_page = to_host ? pairs[i] : pairs[i + 1];
    const int64_t host_page = to_host ? pairs[i + 1] : pairs[i];
    for (int32_t b = 0; b < num_buffers; ++b) {
      uint8_t* device = pools.device_buffers[b] + kv_layout::layer_first_offset(device_page, bytes);
      uint8_t* host = pools.host + kv_layout::page_first_offset(host_page, b, num_buffers, bytes);
      if (to_host) {
        std::memcpy(host, device, static_cast<size_t>(bytes));
      } else {
        std::memcpy(device, host, static_cast<size_t>(bytes));
      }
    }
  }
}

/// Below this many bytes a plan is copied by the calling thread: starting threads costs more.
constexpr int64_t kParallelBytes = int64_t{8} << 20;

}  // namespace

void copy_kv_pages(const KvPools& pools, const int32_t* pairs, int64_t num_pair_entries, bool to_host) {
  check_kv_copy(pools, pairs, num_pair_entries, to_host);
  const int64_t num_pairs = num_pair_entries / 2;
  const int64_t total = num_pairs * static_cast<int64_t>(pools.device_buffers.size()) * pools.page_bytes;
  // One thread does not reach memory bandwidth (a plain large copy, torch's, uses all cores):
  // large plans are split by pairs over the machine's threads.
  const int64_t threads = std::min<int64_t>({static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())),
                                             int64_t{8}, num_pairs});
  if (total < kParallelBytes || threads <= 1) {
    copy_range(pools, pairs, 0, num_pairs, to_host);
    return;
  }
  std::vector<std::thread> workers;
  const int64_t per = (num_pairs + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t first = t * per, last = std::min(num_pairs, first + per);
    if (first < last) workers.emplace_back(copy_range, std::cref(pools), pairs, first, last, to_host);
  }
  copy_range(pools, pairs, 0, std::min(num_pairs, per), to_host);
  for (auto& w : workers) w.join();
}

}  // namespace pythia
