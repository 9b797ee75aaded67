// The scheduler's one door to KV memory: pools plus the radix tree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pythia/eviction_policy.h"
#include "pythia/page_pool.h"
#include "pythia/radix_tree.h"
#include "pythia/request.h"
#include "pythia/step_plan.h"
#include "pythia/workflow_forecast.h"

namespace pythia {

/// \brief When a device node gets a host copy (SGLang HiCache's write policies).
enum class HostWritePolicy : uint8_t {
  /// Backed up (asynchronously) once inserted.
  kWriteThrough,
  /// Backed up once matched kSelectiveHits times: only prefixes that are reused.
  kWriteThroughSelective,
  /// Written when evicted from the device, before its pages are reused.
  kWriteBack,
};
/// Names accepted by parse_host_write_policy, in enum order.
std::vector<std::string> host_write_policy_names();
/// Throws std::invalid_argument for an unknown name.
HostWritePolicy parse_host_write_policy(const std::string& name);

/// \brief The host tier's counters (since the manager was made).
struct HostTierStats {
  /// Prompt tokens served from host copies (loaded back at admission).
  int64_t host_hit_tokens = 0;
  /// Pages copied device -> host: synchronously at eviction, and as backups.
  int64_t pages_offloaded = 0;
  int64_t pages_backed_up = 0;
  /// Pages copied host -> device.
  int64_t pages_loaded = 0;
  /// Host copies dropped to make room, and device pages evicted without any
  /// host copy (lost: recomputed if used again).
  int64_t host_evicted_pages = 0;
  int64_t dropped_pages = 0;
  /// Prefetch (the `pythia` host policy): pages loaded ahead of a job's
  /// predicted next call; of the prefetched nodes, those its next call found
  /// landed (on time), still loading (late), or that were evicted unused.
  int64_t prefetched_pages = 0;
  int64_t prefetch_on_time = 0;
  int64_t prefetch_late = 0;
  int64_t prefetch_unused = 0;
};

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
  /// With a host tier, a continuation of the prefix cached only on the host
  /// is found too; load_host_prefix() brings it back.
  void attach_prefix(Request& req);

  /// \brief Loads the host-only continuation that attach_prefix() found for
  /// `req` (it must be the last request attached) into device pages, evicting
  /// for room; the request then covers it, and waits (ready() is false) until
  /// the load completes. Returns the pages loaded (0: none, or no room).
  int32_t load_host_prefix(Request& req);

  /// \brief False while a load that `req`'s prefix needs is in flight (of any
  /// step: loads may land out of order). Clears req.load_step once none is.
  bool ready(Request& req) const;

  /// \brief Turns the host tier on (the host pool must have pages): when
  /// nodes get host copies, which host copies go first (`host_eviction`), and
  /// whether device eviction writes victims to host (write-back, or
  /// `offload_on_evict`) for those the host policy expects to be reused.
  void enable_host_tier(HostWritePolicy write_policy, std::unique_ptr<EvictionPolicy> host_eviction,
                        bool offload_on_evict);
  bool has_host_tier() const { return host_eviction_ != nullptr; }

  /// \brief Moves the transfers decided since the last call into `plan`
  /// (whose step they were numbered for) and records its asynchronous ones as
  /// in flight. Later decisions go to the next step.
  void take_transfers(StepPlan& plan);
  /// \brief True when `step`'s asynchronous transfers have not completed.
  bool transfers_pending(uint64_t step) const { return async_steps_.count(step) > 0; }
  /// \brief Ends `step`'s asynchronous transfers: backups become host copies
  /// that can be loaded or dropped, loads let their requests run.
  void complete_transfers(uint64_t step);
  const std::unordered_set<uint64_t>& steps_in_flight() const { return async_steps_; }

  /// \brief Prefetch: loads back the host-only contexts of jobs whose next
  /// call is predicted within `lookahead_s`, into free device pages only (it
  /// never evicts for a guess). Needs enable_prefetch(). Returns pages loaded.
  int32_t prefetch(const WorkflowForecast& forecast, double lookahead_s);
  /// \brief Remembers each job's latest context (tokens of its last finished
  /// call) so that prefetch() can find it in the tree.
  void enable_prefetch() { prefetch_ = true; }
  /// \brief Drops what prefetch() keeps about a job.
  void forget_job(int32_t job) {
    job_context_.erase(job);
    offloaded_jobs_.erase(job);
  }
  const HostTierStats& host_stats() const { return host_stats_; }

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
  /// `may_evict` bounds it (RadixTree::evict): prefetch evicts only what is due later.
  std::vector<int32_t> evict(int32_t num_pages, const RadixTree::EvictFilter& may_evict = {});
  /// \brief Evicts the host copies of unlocked, idle pages; returns how many.
  int32_t flush_host();

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
  /// that holds pages, and that every transfer in flight is in a step not
  /// yet completed. Throws std::logic_error naming the violation.
  void check_integrity(const std::vector<const Request*>& holders) const;

 private:
  int32_t page_size_;
  PagePool device_pool_;
  PagePool host_pool_;
  std::unique_ptr<EvictionPolicy> eviction_;  // before tree_, which keeps a reference
  RadixTree tree_;
  int64_t num_evicted_pages_ = 0;
  std::vector<int32_t> scratch_;

  // The host tier (kv_cache_manager_host.cc).
  /// Backs up the nodes on the path to `last` that have no host copy and
  /// enough hits for the write policy, top-down.
  void back_up_path(RadixNode* last);
  /// Eviction hook: gives `victim` (and its ancestors without one) a host copy
  /// written before its pages are reused, when the policies ask for it.
  void offload_victim(RadixNode* victim);
  /// Frees host pages by host eviction until `num_pages` are free.
  bool reserve_host(int32_t num_pages);
  /// Drops at least `num_pages` host copies (fewer if no more can go) and frees their pages;
  /// returns how many were dropped.
  int32_t drop_host_copies(int32_t num_pages);
  /// Gives the host-only `chain` (top-down, marked for a load) the device pages `device_pages`,
  /// in order, and records the copies.
  void begin_loads(const std::vector<RadixNode*>& chain, const std::vector<int32_t>& device_pages);
  /// Latest step of a load in flight on the path from `node` to the root (0: none).
  uint64_t pending_load_on_path(const RadixNode* node) const;
  /// Appends (source, destination) page pairs for a node's copy.
  static void add_pairs(std::vector<int32_t>& table, const std::vector<int32_t>& from,
                        const std::vector<int32_t>& to);
  HostWritePolicy write_policy_ = HostWritePolicy::kWriteThrough;
  std::unique_ptr<EvictionPolicy> host_eviction_;
  bool offload_on_evict_ = false;
  bool spare_copies_first_ = false;
  RadixTree::EvictHook evict_hook_;
  /// The step the transfers decided now belong to: the next plan's.
  uint64_t transfer_step_ = 1;
  std::vector<int32_t> offload_pairs_, backup_pairs_, load_pairs_;
  std::unordered_set<uint64_t> async_steps_;
  /// Eviction hook: counts unused prefetches, then offload_victim() when asked for.
  void on_evict(RadixNode* victim);
  bool prefetch_ = false;
  std::unordered_map<int32_t, std::vector<int32_t>> job_context_;
  /// Jobs with part of their context written to host at eviction: prefetch's candidates.
  std::unordered_set<int32_t> offloaded_jobs_;
  /// What attach_prefix() found on the host for the request it attached.
  std::vector<RadixNode*> host_chain_;
  int64_t host_chain_owner_ = -1;
  HostTierStats host_stats_;
};

}  // namespace pythia
