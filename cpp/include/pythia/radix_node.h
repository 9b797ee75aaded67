// One node of the page-granular radix tree.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "pythia/workflow_tags.h"

namespace pythia {

/// \brief A run of whole KV pages shared by every sequence below it.
///
/// Plain data: the RadixTree maintains the invariants, policies only read.
/// A node holds its KV on the device, in host memory, or both; a node with
/// neither only exists transiently inside the tree's own operations.
struct RadixNode {
  /// What identifies the pages this node covers, RadixTree::key_words() words
  /// per page: a page's token ids when it has at most four tokens, else its
  /// chained 128-bit key (PageHasher), which names the page together with
  /// everything before it in 16 bytes instead of 4 * page_size.
  std::vector<int32_t> keys;
  /// Device page ids, one per page; empty when not on the device.
  std::vector<int32_t> device_pages;
  /// Host page ids, one per page; empty when no host copy exists.
  std::vector<int32_t> host_pages;

  RadixNode* parent = nullptr;
  /// Children filed under a hash of the keys of their first page (collisions
  /// are detected by comparing the keys, see RadixTree).
  std::unordered_map<uint64_t, std::unique_ptr<RadixNode>> children;

  /// Running requests whose prefix ends at or below this node.
  int32_t lock_count = 0;
  /// Children that hold device pages: a node is a device leaf (evictable from
  /// the device) only when this is zero, so device residency stays
  /// prefix-closed even once children live only on the host.
  int32_t num_device_children = 0;
  /// Children that hold a host copy: a node is a host leaf (its host copy may
  /// be dropped) only when this is zero, so host residency is prefix-closed
  /// too: every node with a host copy has a parent with one, or the root.
  int32_t num_host_children = 0;
  /// Step (StepPlan::step) of an asynchronous transfer in flight: a backup of
  /// the device pages to host (the host copy is not readable yet), or a load
  /// of the host copy into the device pages (they are not readable yet, and
  /// requests using them wait). 0: none. A node in flight is locked by it.
  uint64_t backup_step = 0;
  uint64_t load_step = 0;
  /// Matches through this node (HiCache's write_through_selective backs a
  /// node up once it has been hit this often).
  int32_t hit_count = 0;
  /// Loaded back from host ahead of its job's predicted next call, and not used since.
  bool prefetched = false;
  /// Logical time of the last match or insert through this node.
  uint64_t last_access = 0;
  /// Wall-clock time (seconds, the tree's clock) of that last use.
  double last_access_time = 0.0;
  /// Creation order; breaks ties between equal priorities deterministically.
  uint64_t id = 0;
  /// Eviction priority the tree last ranked this node with (static-priority
  /// policies only; see EvictionPolicy::static_priority).
  double rank = 0.0;
  /// Who uses this node: the inserting request's tags, widened by
  /// share_tags() as other jobs, agents or types use it.
  WorkflowTags tags;

  int32_t num_pages() const { return static_cast<int32_t>(device_pages.empty() ? host_pages.size() : device_pages.size()); }
  bool on_device() const { return !device_pages.empty(); }
  bool on_host() const { return !host_pages.empty(); }
  bool in_flight() const { return backup_step != 0 || load_step != 0; }
};

}  // namespace pythia
