// The radix tree's host tier: host copies of nodes, transfers in flight, host eviction.
#include <algorithm>
#include <string>
#include <utility>

#include "pythia/radix_tree.h"
#include "radix_tree_internal.h"

namespace pythia {

using radix_detail::fail;
using radix_detail::node_name;

void RadixTree::refresh_host_leaf(RadixNode* node) {
  if (is_host_leaf(node)) {
    host_leaves_.insert(node);
  } else {
    host_leaves_.erase(node);
  }
}

void RadixTree::set_host_pages(RadixNode* node, const int32_t* host_pages) {
  if (node == &root_ || !node->on_device() || node->on_host()) {
    fail("a host copy needs a node on the device without one, not " + node_name(node));
  }
  if (node->parent != &root_ && !node->parent->on_host()) {
    fail(node_name(node) + " cannot get a host copy before its parent has one");
  }
  node->host_pages.assign(host_pages, host_pages + node->num_pages());
  host_pages_ += node->num_pages();
  ++node->parent->num_host_children;
  refresh_host_leaf(node->parent);
}

void RadixTree::begin_backup(RadixNode* node, const int32_t* host_pages, uint64_t step) {
  if (step == 0) fail("transfers are numbered from step 1");
  set_host_pages(node, host_pages);
  node->backup_step = step;
  lock(node);
  transfers_.push_back({step, node});
  refresh_host_leaf(node);
}

void RadixTree::add_host_copy(RadixNode* node, const int32_t* host_pages) {
  set_host_pages(node, host_pages);
  refresh_host_leaf(node);
}

void RadixTree::mark_load(RadixNode* node, uint64_t step) {
  if (node->on_device() || !node->on_host() || node->in_flight()) {
    fail("only an idle host-only node can be loaded, not " + node_name(node));
  }
  node->load_step = step;
  refresh_host_leaf(node);
}

void RadixTree::unmark_load(RadixNode* node) {
  node->load_step = 0;
  refresh_host_leaf(node);
}

void RadixTree::begin_load(RadixNode* node, const int32_t* device_pages, uint64_t step) {
  if (step == 0) fail("transfers are numbered from step 1");
  if (node->on_device() || !node->on_host()) fail("only a host-only node can be loaded, not " + node_name(node));
  if (node->parent != &root_ && !node->parent->on_device()) {
    fail(node_name(node) + " cannot be loaded before its parent is on the device");
  }
  node->device_pages.assign(device_pages, device_pages + node->num_pages());
  node->load_step = step;
  evictable_pages_ += node->num_pages();  // unlocked until lock() below protects them
  ++node->parent->num_device_children;
  refresh_evictable(node->parent);
  lock(node);
  transfers_.push_back({step, node});
  refresh_host_leaf(node);
}

int32_t RadixTree::complete_transfers(uint64_t step) {
  int32_t done = 0;
  auto it = std::stable_partition(transfers_.begin(), transfers_.end(),
                                  [step](const Transfer& t) { return t.step != step; });
  for (auto t = it; t != transfers_.end(); ++t) {
    // The transfer's node and the nodes split off above it since, which share its step.
    for (RadixNode* n = t->node; n != &root_ && (n->backup_step == step || n->load_step == step);
         n = n->parent) {
      if (n->backup_step == step) n->backup_step = 0;
      if (n->load_step == step) n->load_step = 0;
      refresh_host_leaf(n);
      ++done;
    }
    unlock(t->node);
  }
  transfers_.erase(it, transfers_.end());
  return done;
}

void RadixTree::remove_host_pages(RadixNode* node, std::vector<int32_t>& out) {
  out.insert(out.end(), node->host_pages.begin(), node->host_pages.end());
  host_pages_ -= node->num_pages();
  node->host_pages.clear();
  host_leaves_.erase(node);
  RadixNode* parent = node->parent;
  --parent->num_host_children;
  if (!node->on_device()) delete_leaf(node);
  refresh_host_leaf(parent);
}

int32_t RadixTree::evict_host(int32_t num_pages, const EvictionPolicy& policy, std::vector<int32_t>& out,
                              bool device_copies_first) {
  using Entry = std::pair<std::pair<double, uint64_t>, RadixNode*>;
  auto later = [](const Entry& a, const Entry& b) { return a.first > b.first; };
  // Bands far below any policy priority (those are at least -2e15, eviction_policy.h).
  auto rank = [&](const RadixNode& n) {
    if (!device_copies_first) return policy.priority(n);
    // Copies predicted dead go first, then spare copies, then the only copies of the rest.
    const double band = !policy.expects_reuse(n) ? -2e18 : n.on_device() ? -1e18 : 0.0;
    return band + policy.priority(n);
  };
  std::vector<Entry> heap;
  heap.reserve(host_leaves_.size());
  for (RadixNode* node : host_leaves_) heap.push_back({{rank(*node), node->id}, node});
  std::make_heap(heap.begin(), heap.end(), later);
  int32_t removed = 0;
  while (removed < num_pages && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    RadixNode* node = heap.back().second;
    heap.pop_back();
    RadixNode* parent = node->parent;
    removed += node->num_pages();
    remove_host_pages(node, out);
    if (host_leaves_.count(parent)) {
      heap.push_back({{rank(*parent), parent->id}, parent});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
  return removed;
}

}  // namespace pythia
