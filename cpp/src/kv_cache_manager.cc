#include "pythia/kv_cache_manager.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace pythia {

KVCacheManager::KVCacheManager(int32_t page_size, int32_t num_device_pages,
                               int32_t num_host_pages, std::unique_ptr<EvictionPolicy> eviction)
    : page_size_(page_size),
      device_pool_(Tier::kDevice, num_device_pages),
      host_pool_(Tier::kHost, num_host_pages),
      eviction_(eviction ? std::move(eviction)
                         : throw std::invalid_argument("KVCacheManager: no eviction policy")),
      tree_(page_size, *eviction_) {}

void KVCacheManager::attach_prefix(Request& req) {
  if (req.last_node != nullptr || !req.pages.empty()) {
    throw std::logic_error("attach_prefix: request " + std::to_string(req.id) +
                           " already holds pages");
  }
  host_chain_.clear();
  host_chain_owner_ = req.id;
  MatchResult match = tree_.match_prefix(req.tokens.data(), req.cacheable_len(), req.tags,
                                         has_host_tier() ? &host_chain_ : nullptr);
  tree_.lock(match.last_node);
  req.pages = std::move(match.device_pages);
  req.num_shared_pages = static_cast<int32_t>(req.pages.size());
  req.last_node = match.last_node;
  req.num_computed = req.num_shared_pages * page_size_;
  req.num_cached = req.num_computed;
  req.num_host_cached = 0;
  req.load_step = 0;
  req.cached_reported = false;
  if (!has_host_tier()) return;  // no loads, no prefetches: nothing more on the path to look at
  for (RadixNode* n = match.last_node; n != tree_.root(); n = n->parent) {
    // Pages another request is still loading: this one waits for them too.
    req.load_step = std::max(req.load_step, n->load_step);
    if (n->prefetched) {
      ++(n->load_step != 0 ? host_stats_.prefetch_late : host_stats_.prefetch_on_time);
      n->prefetched = false;
    }
  }
  if (write_policy_ == HostWritePolicy::kWriteThroughSelective) back_up_path(match.last_node);
}

bool KVCacheManager::grow(Request& req, int32_t num_positions) {
  const int32_t needed = pages_for(num_positions) - static_cast<int32_t>(req.pages.size());
  if (needed <= 0) return true;
  if (needed > available_pages()) return false;
  if (device_pool_.num_free() < needed) evict(needed - device_pool_.num_free());
  return device_pool_.allocate(needed, req.pages);
}

void KVCacheManager::cache_prefix(Request& req) {
  const int32_t full = std::min<int32_t>(req.num_computed / page_size_,
                                         static_cast<int32_t>(req.pages.size()));
  if (full <= req.num_shared_pages) return;
  scratch_.clear();
  InsertResult ins = tree_.insert(req.tokens.data(), full, req.pages.data(), req.tags, &scratch_);
  // Pages another request cached first: use the tree's, give ours back.
  for (int32_t i = req.num_shared_pages; i < ins.num_present; ++i) {
    if (req.pages[i] != scratch_[i]) {
      device_pool_.release(req.pages[i]);
      req.pages[i] = scratch_[i];
    }
  }
  tree_.lock(ins.last_node);
  tree_.unlock(req.last_node);
  req.last_node = ins.last_node;
  req.num_shared_pages = ins.num_inserted;
  if (has_host_tier()) {
    // The tree's copy of a page this request computed may still be loading (another request's
    // host hit): the request now reads the tree's, so it waits for that load too.
    req.load_step = std::max(req.load_step, pending_load_on_path(ins.last_node));
    back_up_path(ins.last_node);
  }
}

void KVCacheManager::release(Request& req) {
  if (req.last_node == nullptr) return;
  cache_prefix(req);
  if (prefetch_ && req.tags.job >= 0) job_context_[req.tags.job] = req.tokens;
  for (size_t i = req.num_shared_pages; i < req.pages.size(); ++i) {
    device_pool_.release(req.pages[i]);
  }
  tree_.unlock(req.last_node);
  req.pages.clear();
  req.num_shared_pages = 0;
  req.last_node = nullptr;
  req.num_computed = 0;
}

std::vector<int32_t> KVCacheManager::evict(int32_t num_pages, const RadixTree::EvictFilter& may_evict) {
  std::vector<int32_t> evicted;
  tree_.evict(num_pages, evicted, evict_hook_, may_evict);
  for (int32_t page : evicted) device_pool_.release(page);
  num_evicted_pages_ += static_cast<int64_t>(evicted.size());
  return evicted;
}

void KVCacheManager::check_integrity(const std::vector<const Request*>& holders) const {
  std::vector<int32_t> device_owners(device_pool_.num_pages(), 0);
  std::vector<int32_t> host_owners(host_pool_.num_pages(), 0);
  std::unordered_map<const RadixNode*, int32_t> expected_locks;

  auto count = [](std::vector<int32_t>& owners, int32_t page, const char* pool) {
    if (page < 0 || page >= static_cast<int32_t>(owners.size())) {
      throw std::logic_error(std::string("cache: ") + pool + " page " + std::to_string(page) +
                             " is out of range");
    }
    ++owners[page];
  };
  tree_.for_each_node([&](const RadixNode& node) {
    for (int32_t page : node.device_pages) count(device_owners, page, "device");
    for (int32_t page : node.host_pages) count(host_owners, page, "host");
  });

  std::vector<int32_t> path_pages, path_keys;
  for (const Request* req : holders) {
    const std::string who = "cache: request " + std::to_string(req->id);
    if (req->last_node == nullptr) throw std::logic_error(who + " is running without a prefix node");
    if (req->num_shared_pages > static_cast<int32_t>(req->pages.size())) {
      throw std::logic_error(who + " shares more pages than it has");
    }
    if (pages_for(req->num_computed) > static_cast<int32_t>(req->pages.size())) {
      throw std::logic_error(who + " computed " + std::to_string(req->num_computed) +
                             " positions but holds only " + std::to_string(req->pages.size()) +
                             " pages");
    }
    // Shared pages must be exactly the tree's pages along the locked path.
    path_pages.clear();
    path_keys.clear();
    for (const RadixNode* n = req->last_node; n != tree_.root(); n = n->parent) {
      ++expected_locks[n];
      path_pages.insert(path_pages.begin(), n->device_pages.begin(), n->device_pages.end());
      path_keys.insert(path_keys.begin(), n->keys.begin(), n->keys.end());
    }
    if (static_cast<int32_t>(path_pages.size()) != req->num_shared_pages ||
        !std::equal(path_pages.begin(), path_pages.end(), req->pages.begin())) {
      throw std::logic_error(who + "'s shared pages differ from its locked tree path");
    }
    // The tree keeps keys, not tokens (hashed, for pages over four tokens):
    // the request's tokens tell whether its path is keyed by them.
    if (static_cast<int64_t>(req->tokens.size()) < static_cast<int64_t>(req->num_shared_pages) * page_size_ ||
        path_keys != tree_.page_keys(req->tokens.data(), req->num_shared_pages)) {
      throw std::logic_error(who + "'s locked tree path is not keyed by its tokens");
    }
    for (size_t i = req->num_shared_pages; i < req->pages.size(); ++i) {
      count(device_owners, req->pages[i], "device");
    }
  }
  // Each transfer in flight holds one lock on its path, and belongs to a step not yet completed.
  size_t transfers = 0;
  tree_.for_each_transfer([&](uint64_t step, const RadixNode* node) {
    if (!async_steps_.count(step) && step != transfer_step_) {
      throw std::logic_error("cache: a transfer of step " + std::to_string(step) +
                             " is in flight, but that step is not");
    }
    for (const RadixNode* n = node; n != tree_.root(); n = n->parent) ++expected_locks[n];
    ++transfers;
  });
  if (!has_host_tier() && transfers > 0) throw std::logic_error("cache: transfers without a host tier");
  tree_.check_integrity(expected_locks);
  device_pool_.check_integrity(device_owners);
  host_pool_.check_integrity(host_owners);
}

}  // namespace pythia
