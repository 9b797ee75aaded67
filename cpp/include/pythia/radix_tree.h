// Page-granular radix tree over token ids: the prefix cache's index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <unordered_set>
#include <vector>

#include "pythia/eviction_policy.h"
#include "pythia/page_hash.h"
#include "pythia/radix_node.h"
#include "pythia/workflow_tags.h"

namespace pythia {

/// \brief Result of RadixTree::match_prefix.
struct MatchResult {
  /// Device pages of the longest device-resident cached prefix.
  std::vector<int32_t> device_pages;
  /// Deepest node of that prefix (the root when nothing matched); lock it to
  /// keep the prefix from being evicted while a request uses it.
  RadixNode* last_node = nullptr;
  /// Further pages of the prefix that are cached only in host memory.
  int32_t host_hit_pages = 0;
};

/// \brief Result of RadixTree::insert.
struct InsertResult {
  /// Leading pages that were already cached on the device. The tree kept its
  /// own page ids for them; where the caller's ids differ, the caller still
  /// owns (and should release) its copies.
  int32_t num_present = 0;
  /// Pages [num_present, num_inserted) now belong to the tree. Pages past
  /// num_inserted stay with the caller: this only happens when two different
  /// pages after the same prefix are filed alike (64-bit hashes of their
  /// keys), where the tree keeps the first and declines the second.
  int32_t num_inserted = 0;
  /// Node where the inserted prefix ends (root for an empty insert).
  RadixNode* last_node = nullptr;
};

/// \brief Radix tree whose edges are whole KV pages.
///
/// The tree only indexes page ids; it never allocates or frees them. Pages it
/// gives up through evict() or clear() are returned to the caller, which owns
/// the pools (KVCacheManager). Matching works on whole pages: a partial
/// trailing page of a sequence is never cached. Pages of more than four
/// tokens are stored and compared by their chained keys (PageHasher, which
/// says why a collision is not a practical risk): a lookup hashes the query's
/// pages as far as it walks, an insert all of them; smaller pages are stored
/// as they are, no larger than a key.
class RadixTree {
 public:
  /// `policy` ranks nodes for eviction; it must outlive the tree. `hash_seed`
  /// 0 draws the key secret at random (see PageHasher).
  RadixTree(int32_t page_size, const EvictionPolicy& policy, uint64_t hash_seed = 0);
  ~RadixTree();
  RadixTree(const RadixTree&) = delete;
  RadixTree& operator=(const RadixTree&) = delete;

  /// \brief Longest cached prefix of tokens[0, n) in whole pages. Splits a
  /// node when the match ends inside it, so that last_node covers exactly the
  /// matched prefix, and marks the path as used now by a request with `tags`
  /// (see share_tags: a node used by two jobs becomes a shared prefix).
  /// With `host_chain`, the host-only nodes continuing the device match are
  /// appended to it, the last split where the match ends, and marked used
  /// (for KVCacheManager, which loads them).
  MatchResult match_prefix(const int32_t* tokens, size_t n, const WorkflowTags& tags = WorkflowTags{},
                           std::vector<RadixNode*>* host_chain = nullptr);

  /// \brief Device pages match_prefix would return, without splitting nodes
  /// or touching access times (for ordering policies that only look).
  int32_t peek_prefix_pages(const int32_t* tokens, size_t n) const;

  /// \brief Caches `num_pages` whole pages: tokens[0, num_pages * page_size)
  /// with their device page ids. Nodes created by this call record `tags`.
  /// When `tree_pages` is given it receives the tree's page ids for
  /// [0, num_inserted).
  InsertResult insert(const int32_t* tokens, int32_t num_pages, const int32_t* pages,
                      const WorkflowTags& tags, std::vector<int32_t>* tree_pages = nullptr);

  /// \brief Protects the path from `node` to the root from eviction.
  void lock(RadixNode* node);
  /// \brief Undoes one lock().
  void unlock(RadixNode* node);

  /// \brief Removes device pages of unlocked device leaves, lowest policy
  /// priority first, until at least `num_pages` pages are removed or nothing
  /// is evictable. Removed page ids are appended to `out`, in eviction order;
  /// the caller releases them. Returns the number removed.
  /// `before_remove` is called on each victim before its device pages go (the
  /// host tier's write-back gives it a host copy there, so that it stays).
  /// Eviction stops early at the first victim `may_evict` refuses (later ones
  /// rank higher): a bounded eviction, for prefetch.
  using EvictHook = std::function<void(RadixNode*)>;
  using EvictFilter = std::function<bool(const RadixNode&)>;
  int32_t evict(int32_t num_pages, std::vector<int32_t>& out, const EvictHook& before_remove = {},
                const EvictFilter& may_evict = {});

  // The host tier. Transfers are two-phase: begin_*() records a copy that the
  // caller starts, complete_transfers() ends it. A node in flight is locked by
  // its transfer, so neither copy can be evicted or reused meanwhile.

  /// \brief Gives `node` (on the device, without a host copy, below the root
  /// or a node with one) the host copy `host_pages`, being written by an
  /// asynchronous copy until complete_transfers(step).
  void begin_backup(RadixNode* node, const int32_t* host_pages, uint64_t step);
  /// \brief The same, for a copy the caller finishes before any device page
  /// of the node is reused (write-back at eviction): nothing is in flight.
  void add_host_copy(RadixNode* node, const int32_t* host_pages);
  /// \brief Gives host-only `node` (below the root or a device node) the
  /// device pages `device_pages`, filled from its host copy by an asynchronous
  /// copy until complete_transfers(step); requests using it wait for that.
  void begin_load(RadixNode* node, const int32_t* device_pages, uint64_t step);
  /// \brief Marks host-only nodes about to be loaded at `step` so that host
  /// eviction leaves them alone while device pages are found; begin_load()
  /// or unmark_load() follows.
  void mark_load(RadixNode* node, uint64_t step);
  void unmark_load(RadixNode* node);
  /// \brief Ends every transfer begun at `step`; returns how many nodes.
  int32_t complete_transfers(uint64_t step);
  /// \brief Drops host copies of host leaves (no child with a host copy,
  /// nothing in flight), lowest `policy` priority first, until at least
  /// `num_pages` pages are dropped or none is left; a node with no device
  /// copy leaves the tree. Dropped host page ids are appended to `out`.
  /// With `device_copies_first`, copies `policy` predicts dead go first, then
  /// host copies of nodes also on the device (spare while the device copy
  /// lives), then the only copies of the rest.
  int32_t evict_host(int32_t num_pages, const EvictionPolicy& policy, std::vector<int32_t>& out,
                     bool device_copies_first = false);
  /// Host pages evict_host() could drop now, at most (its leaves' pages; more
  /// become leaves as it goes).
  int32_t num_host_leaves() const { return static_cast<int32_t>(host_leaves_.size()); }
  /// Transfers begun and not completed.
  size_t num_transfers() const { return transfers_.size(); }
  /// \brief Calls `fn(step, node)` on each transfer in flight (node: the
  /// deepest node it covers, which it locks).
  template <class Fn>
  void for_each_transfer(Fn&& fn) const {
    for (const auto& t : transfers_) fn(t.step, t.node);
  }

  /// \brief Sets the wall clock (seconds) recorded as nodes' last_access_time.
  void set_time(double now) { time_ = now; }

  /// \brief Re-ranks a node after its policy priority changed for a reason
  /// the tree cannot see (a static-priority policy learned something new).
  void reprioritize(RadixNode* node);

  /// \brief Drops every node. Requires that nothing is locked; appends all
  /// device and host pages to the given vectors for the caller to release.
  void clear(std::vector<int32_t>& device_out, std::vector<int32_t>& host_out);

  int32_t page_size() const { return page_size_; }
  /// Words of RadixNode::keys per page: page_size up to four tokens, else
  /// PageHasher::kKeyWords.
  int32_t key_words() const { return key_words_; }
  /// \brief RadixNode::keys of the first `num_pages` whole pages of `tokens`,
  /// as the tree computes them (for checks of a request's path).
  std::vector<int32_t> page_keys(const int32_t* tokens, int32_t num_pages) const;
  /// Device pages in unlocked nodes: all of them can be freed by evict().
  int32_t evictable_pages() const { return evictable_pages_; }
  /// Device pages in locked nodes.
  int32_t protected_pages() const { return protected_pages_; }
  int32_t cached_device_pages() const { return evictable_pages_ + protected_pages_; }
  int32_t cached_host_pages() const { return host_pages_; }
  int32_t num_nodes() const { return num_nodes_; }
  const RadixNode* root() const { return &root_; }

  /// \brief Re-tags every node of job `job` as job `as_job`, re-ranking
  /// them; O(nodes). Returns how many nodes changed.
  int32_t retag_job(int32_t job, int32_t as_job);

  /// \brief Calls `fn` on every node but the root, parents before children.
  void for_each_node(const std::function<void(const RadixNode&)>& fn) const;

  /// \brief Checks structure, counters and the evictable set; `expected_locks`
  /// maps each node to the number of requests holding it (the path of each
  /// request's last node). Throws std::logic_error naming the violation.
  /// Keys are checked for shape (whole pages, each child filed under its
  /// first page); whether hashed keys are the right chain can only be checked
  /// against tokens, which the tree does not keep: KVCacheManager's check
  /// recomputes the path of every request that holds one.
  void check_integrity(const std::unordered_map<const RadixNode*, int32_t>& expected_locks) const;

 private:
  class QueryKeys;
  bool hashed() const { return page_size_ > PageHasher::kKeyWords; }
  /// Hash of one page's keys, which a node files the child starting there under.
  uint64_t page_key(const int32_t* page_keys) const;
  bool same_page(const int32_t* a, const int32_t* b) const;
  /// Finds the child whose first page has keys `page_keys`, or nullptr.
  RadixNode* find_child(const RadixNode* node, const int32_t* page_keys) const;
  /// Number of leading pages equal in the keys a and b, at most n.
  int32_t equal_pages(const int32_t* a, const int32_t* b, int32_t n) const;
  /// Number of leading whole pages of `node` whose keys equal the query's from
  /// page `pos` on, at most max_pages.
  int32_t common_pages(const RadixNode* node, QueryKeys& query, int32_t pos, int32_t max_pages) const;
  /// Splits `node` after `k` pages; returns the new parent holding the first k.
  RadixNode* split(RadixNode* node, int32_t k);
  RadixNode* new_node(RadixNode* parent, const int32_t* keys, int32_t num_pages);
  bool is_evictable(const RadixNode* node) const;
  void refresh_evictable(RadixNode* node);
  /// Marks `node` used at logical time `now`, re-ranking it if evictable.
  void touch(RadixNode* node, uint64_t now, const WorkflowTags& user);
  void delete_leaf(RadixNode* node);
  int32_t evict_in_order(int32_t num_pages, std::vector<int32_t>& out, const EvictHook& before_remove,
                         const EvictFilter& may_evict);
  int32_t evict_by_rescan(int32_t num_pages, std::vector<int32_t>& out, const EvictHook& before_remove,
                          const EvictFilter& may_evict);
  void remove_device_pages(RadixNode* node, std::vector<int32_t>& out);
  bool is_host_leaf(const RadixNode* node) const {
    return node != &root_ && node->on_host() && !node->in_flight() && node->num_host_children == 0;
  }
  void refresh_host_leaf(RadixNode* node);
  void set_host_pages(RadixNode* node, const int32_t* host_pages);
  void remove_host_pages(RadixNode* node, std::vector<int32_t>& out);

  using RankKey = std::pair<std::pair<double, uint64_t>, RadixNode*>;
  static RankKey rank_key(RadixNode* node) { return {{node->rank, node->id}, node}; }

  int32_t page_size_;
  int32_t key_words_;
  /// Keys pages of more than four tokens; unused for smaller ones.
  PageHasher hasher_;
  const EvictionPolicy& policy_;
  const bool ordered_eviction_;
  RadixNode root_;
  uint64_t clock_ = 0;
  double time_ = 0.0;
  uint64_t next_id_ = 1;
  int32_t evictable_pages_ = 0;
  int32_t protected_pages_ = 0;
  int32_t host_pages_ = 0;
  int32_t num_nodes_ = 0;
  /// Unlocked device leaves. Kept incrementally so that eviction looks only at
  /// candidates, not at the whole tree.
  std::unordered_set<RadixNode*> evictable_;
  /// The same nodes in eviction order, for static-priority policies.
  std::set<RankKey> ranked_;
  /// Nodes whose host copy may be dropped (is_host_leaf), kept incrementally.
  std::unordered_set<RadixNode*> host_leaves_;
  /// Transfers in flight: the step that began each and the node it locks.
  struct Transfer {
    uint64_t step;
    RadixNode* node;
  };
  std::vector<Transfer> transfers_;
  /// insert()'s hashed keys of the sequence, kept to reuse the allocation.
  std::vector<int32_t> insert_keys_;
};

}  // namespace pythia
