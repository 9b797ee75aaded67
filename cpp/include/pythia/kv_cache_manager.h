// The scheduler's one door to KV memory: pools plus the radix tree.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pythia/eviction_policy.h"
#include "pythia/page_pool.h"
#include "pythia/radix_tree.h"
#include "pythia/request.h"

namespace pythia {

/// \brief Owns the device and host page pools and the prefix tree, and moves
/// pages between requests, the tree and the free lists.
///
/// Ownership rule checked by check_integrity(): every allocated device page is
/// owned exactly once, either by the tree or by one request (its pages past
/// num_shared_pages); a request reaches tree pages only through a locked node.
class KVCacheManager {
 public:
  KVCacheManager(int32_t page_size, int32_t num_device_pages, int32_t num_host_pages,
                 std::unique_ptr<EvictionPolicy> eviction);

  /// \brief Gives a waiting request the longest cached prefix of its tokens
  /// (all but the last, which must be computed to get logits) and locks it.
  void attach_prefix(Request& req);

  /// \brief Extends req.pages to cover `num_positions` positions, evicting
  /// cached pages when the free list is short. Returns false, changing
  /// nothing, when even eviction cannot supply the pages.
  bool grow(Request& req, int32_t num_positions);

  /// \brief Publishes the request's computed whole pages in the tree so that
  /// other requests can share them; duplicates of pages another request
  /// cached meanwhile are swapped for the tree's and released.
  void cache_prefix(Request& req);

  /// \brief Ends the request's hold on KV memory: caches its computed whole
  /// pages, releases the rest, unlocks its prefix. The request keeps its tokens.
  void release(Request& req);

  /// \brief Evicts at least `num_pages` cached device pages if that many are
  /// evictable; returns the evicted page ids in eviction order.
  std::vector<int32_t> evict(int32_t num_pages);

  /// \brief Sets the clock recorded as the last use of cached prefixes.
  void set_time(double now) { tree_.set_time(now); }

  int32_t pages_for(int64_t num_positions) const {
    return static_cast<int32_t>((num_positions + page_size_ - 1) / page_size_);
  }
  /// Pages an allocation can get right now: free plus evictable.
  int32_t available_pages() const { return device_pool_.num_free() + tree_.evictable_pages(); }
  int32_t page_size() const { return page_size_; }
  int64_t num_evicted_pages() const { return num_evicted_pages_; }
  const PagePool& device_pool() const { return device_pool_; }
  const PagePool& host_pool() const { return host_pool_; }
  const RadixTree& tree() const { return tree_; }
  /// See RadixTree::retag_job.
  int32_t retag_job(int32_t job, int32_t as_job) { return tree_.retag_job(job, as_job); }
  const EvictionPolicy& eviction_policy() const { return *eviction_; }

  /// \brief Checks pools, tree and the ownership rule given every request
  /// that holds pages. Throws std::logic_error naming the violation.
  void check_integrity(const std::vector<const Request*>& holders) const;

 private:
  int32_t page_size_;
  PagePool device_pool_;
  PagePool host_pool_;
  std::unique_ptr<EvictionPolicy> eviction_;  // before tree_, which keeps a reference
  RadixTree tree_;
  int64_t num_evicted_pages_ = 0;
  std::vector<int32_t> scratch_;
};

}  // namespace pythia
