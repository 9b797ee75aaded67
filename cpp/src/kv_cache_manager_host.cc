// KVCacheManager's host tier: the offload planner. It decides which pages move between the
// device and host pools and records the copies for the step plan; the engine moves the bytes.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "pythia/kv_cache_manager.h"

namespace pythia {
namespace {

/// HiCache's write_through_threshold for write_through_selective: a node is
/// backed up on its second hit, so prefixes used once never cross PCIe.
constexpr int32_t kSelectiveHits = 2;

}  // namespace

std::vector<std::string> host_write_policy_names() {
  return {"write_through", "write_through_selective", "write_back"};
}

HostWritePolicy parse_host_write_policy(const std::string& name) {
  const auto names = host_write_policy_names();
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw std::invalid_argument("unknown host write policy '" + name + "'");
  return static_cast<HostWritePolicy>(it - names.begin());
}

void KVCacheManager::enable_host_tier(HostWritePolicy write_policy,
                                      std::unique_ptr<EvictionPolicy> host_eviction,
                                      bool offload_on_evict) {
  if (host_pool_.num_pages() == 0) throw std::invalid_argument("host tier: the host pool has no pages");
  if (!host_eviction) throw std::invalid_argument("host tier: no host eviction policy");
  write_policy_ = write_policy;
  host_eviction_ = std::move(host_eviction);
  offload_on_evict_ = offload_on_evict || write_policy == HostWritePolicy::kWriteBack;
  // When every eviction writes its victim to host anyway, a host copy of a page still on the
  // device is spare: it goes before the only copy of anything (HiCache's LRU keeps no such rule).
  spare_copies_first_ = offload_on_evict;
  evict_hook_ = [this](RadixNode* victim) { on_evict(victim); };
}

void KVCacheManager::on_evict(RadixNode* victim) {
  if (victim->prefetched) {
    ++host_stats_.prefetch_unused;
    victim->prefetched = false;
  }
  if (offload_on_evict_) offload_victim(victim);
  // Its context now lives on the host only: a candidate for prefetch.
  if (prefetch_ && victim->on_host() && victim->tags.job >= 0) offloaded_jobs_.insert(victim->tags.job);
}

void KVCacheManager::add_pairs(std::vector<int32_t>& table, const std::vector<int32_t>& from,
                               const std::vector<int32_t>& to) {
  for (size_t i = 0; i < from.size(); ++i) {
    table.push_back(from[i]);
    table.push_back(to[i]);
  }
}

int32_t KVCacheManager::drop_host_copies(int32_t num_pages) {
  std::vector<int32_t> dropped;
  tree_.evict_host(num_pages, *host_eviction_, dropped, spare_copies_first_);
  for (int32_t page : dropped) host_pool_.release(page);
  host_stats_.host_evicted_pages += static_cast<int64_t>(dropped.size());
  return static_cast<int32_t>(dropped.size());
}

bool KVCacheManager::reserve_host(int32_t num_pages) {
  while (host_pool_.num_free() < num_pages) {
    if (drop_host_copies(num_pages - host_pool_.num_free()) == 0) return false;
  }
  return true;
}

uint64_t KVCacheManager::pending_load_on_path(const RadixNode* node) const {
  uint64_t step = 0;
  for (const RadixNode* n = node; n != nullptr && n != tree_.root(); n = n->parent) step = std::max(step, n->load_step);
  return step;
}

void KVCacheManager::begin_loads(const std::vector<RadixNode*>& chain, const std::vector<int32_t>& device_pages) {
  size_t at = 0;
  for (RadixNode* node : chain) {
    tree_.begin_load(node, device_pages.data() + at, transfer_step_);
    add_pairs(load_pairs_, node->host_pages, node->device_pages);
    at += static_cast<size_t>(node->num_pages());
  }
}

void KVCacheManager::back_up_path(RadixNode* last) {
  if (write_policy_ == HostWritePolicy::kWriteBack) return;
  const int32_t threshold = write_policy_ == HostWritePolicy::kWriteThrough ? 1 : kSelectiveHits;
  // Nodes without a host copy, from the deepest up to the first that has one.
  std::vector<RadixNode*> path;
  for (RadixNode* n = last; n != tree_.root() && !n->on_host(); n = n->parent) path.push_back(n);
  std::vector<int32_t> host_pages;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    RadixNode* node = *it;
    // A child cannot have a host copy before its parent: stop at the first that does not qualify.
    // Making room may drop the parent's copy (a host leaf until its child has one): checked after.
    auto parent_on_host = [&] { return node->parent == tree_.root() || node->parent->on_host(); };
    if (node->hit_count < threshold || !parent_on_host()) return;
    if (!reserve_host(node->num_pages()) || !parent_on_host()) return;
    host_pages.clear();
    host_pool_.allocate(node->num_pages(), host_pages);
    tree_.begin_backup(node, host_pages.data(), transfer_step_);
    add_pairs(backup_pairs_, node->device_pages, host_pages);
    host_stats_.pages_backed_up += node->num_pages();
  }
}

void KVCacheManager::offload_victim(RadixNode* victim) {
  if (victim->on_host()) return;  // its host copy stays; only the device pages go
  if (!host_eviction_->expects_reuse(*victim)) {
    host_stats_.dropped_pages += victim->num_pages();
    return;
  }
  // The victim and its ancestors without a host copy (all on the device: device residency is
  // prefix-closed) are written top-down. Host eviction may take the host copy of the nearest
  // ancestor that has one (a host leaf until the victim gets its copy), so the path is found
  // again after each round of it.
  std::vector<RadixNode*> path;
  int32_t need = 0;
  for (;;) {
    path.clear();
    need = 0;
    for (RadixNode* n = victim; n != tree_.root() && !n->on_host(); n = n->parent) {
      path.push_back(n);
      need += n->num_pages();
    }
    if (host_pool_.num_free() >= need) break;
    if (drop_host_copies(need - host_pool_.num_free()) == 0) {
      host_stats_.dropped_pages += victim->num_pages();
      return;
    }
  }
  std::vector<int32_t> host_pages;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    RadixNode* node = *it;
    host_pages.clear();
    host_pool_.allocate(node->num_pages(), host_pages);
    tree_.add_host_copy(node, host_pages.data());
    add_pairs(offload_pairs_, node->device_pages, host_pages);
    host_stats_.pages_offloaded += node->num_pages();
  }
}

int32_t KVCacheManager::load_host_prefix(Request& req) {
  if (!has_host_tier() || host_chain_owner_ != req.id || host_chain_.empty()) return 0;
  host_chain_owner_ = -1;
  int32_t total = 0;
  for (RadixNode* node : host_chain_) {
    tree_.mark_load(node, transfer_step_);  // host eviction must not take them meanwhile
    total += node->num_pages();
  }
  std::vector<int32_t> device_pages;
  if (device_pool_.num_free() < total) evict(total - device_pool_.num_free());
  if (!device_pool_.allocate(total, device_pages)) {
    for (RadixNode* node : host_chain_) tree_.unmark_load(node);
    return 0;
  }
  begin_loads(host_chain_, device_pages);
  tree_.lock(host_chain_.back());
  tree_.unlock(req.last_node);
  req.last_node = host_chain_.back();
  // The loaded pages follow the shared ones: the request owns none past them yet.
  if (static_cast<int32_t>(req.pages.size()) != req.num_shared_pages) {
    throw std::logic_error("load_host_prefix: request " + std::to_string(req.id) + " already owns pages");
  }
  req.pages.insert(req.pages.end(), device_pages.begin(), device_pages.end());
  req.num_shared_pages += total;
  req.num_computed = req.num_shared_pages * page_size_;
  req.num_cached = req.num_computed;
  req.num_host_cached = total * page_size_;
  req.load_step = transfer_step_;
  host_stats_.pages_loaded += total;
  host_stats_.host_hit_tokens += static_cast<int64_t>(total) * page_size_;
  host_chain_.clear();
  return total;
}

bool KVCacheManager::ready(Request& req) const {
  if (req.load_step == 0) return true;
  if (pending_load_on_path(req.last_node) != 0) return false;
  req.load_step = 0;
  return true;
}

int32_t KVCacheManager::prefetch(const WorkflowForecast& forecast, double lookahead_s) {
  if (!prefetch_ || offloaded_jobs_.empty()) return 0;
  int32_t loaded = 0;
  std::vector<int32_t> jobs(offloaded_jobs_.begin(), offloaded_jobs_.end());
  std::sort(jobs.begin(), jobs.end());  // deterministic order
  std::vector<RadixNode*> chain;
  std::vector<int32_t> device_pages;
  for (int32_t job : jobs) {
    const JobForecast* f = forecast.job(job);
    auto ctx = job_context_.find(job);
    if (f == nullptr || forecast.is_dead(*f) || ctx == job_context_.end()) {
      offloaded_jobs_.erase(job);
      continue;
    }
    if (forecast.next_use(*f) - forecast.now() > lookahead_s) continue;
    chain.clear();
    WorkflowTags own;
    own.job = job;
    const std::vector<int32_t>& tokens = ctx->second;
    RadixNode* above = tree_.match_prefix(tokens.data(), tokens.size(), own, &chain).last_node;
    int32_t total = 0;
    for (const RadixNode* node : chain) total += node->num_pages();
    if (total == 0) {
      offloaded_jobs_.erase(job);
      continue;
    }
    // Room may come only from pages predicted to be needed later than this job's (by the host
    // policy's ranking, which puts dead context first): a guess never evicts what is due sooner.
    // While room is made: the device prefix above stays, and host eviction leaves the chain alone.
    tree_.lock(above);
    for (RadixNode* node : chain) tree_.mark_load(node, transfer_step_);
    if (device_pool_.num_free() < total) {
      const double due = forecast.next_use(*f);
      evict(total - device_pool_.num_free(), [&](const RadixNode& n) { return host_eviction_->priority(n) < -due; });
    }
    if (device_pool_.num_free() < total) {
      for (RadixNode* node : chain) tree_.unmark_load(node);
      tree_.unlock(above);
      continue;
    }
    device_pages.clear();
    device_pool_.allocate(total, device_pages);
    begin_loads(chain, device_pages);
    for (RadixNode* node : chain) node->prefetched = true;
    tree_.unlock(above);
    host_stats_.prefetched_pages += total;
    host_stats_.pages_loaded += total;
    loaded += total;
    offloaded_jobs_.erase(job);
  }
  return loaded;
}

void KVCacheManager::take_transfers(StepPlan& plan) {
  if (plan.step != transfer_step_) {
    throw std::logic_error("take_transfers: transfers are numbered for step " +
                           std::to_string(transfer_step_) + ", the plan is step " + std::to_string(plan.step));
  }
  plan.offload_pages.swap(offload_pairs_);
  plan.backup_pages.swap(backup_pairs_);
  plan.load_pages.swap(load_pairs_);
  // The plan's tables were cleared when it was made, so ours are empty again after the swaps.
  if (plan.has_async_transfers()) async_steps_.insert(plan.step);
  transfer_step_ = plan.step + 1;
}

void KVCacheManager::complete_transfers(uint64_t step) {
  if (!async_steps_.erase(step)) {
    throw std::invalid_argument("complete_transfers: step " + std::to_string(step) +
                                " has no transfers in flight");
  }
  tree_.complete_transfers(step);
}

int32_t KVCacheManager::flush_host() { return has_host_tier() ? drop_host_copies(tree_.cached_host_pages()) : 0; }

}  // namespace pythia
