#include "pythia/radix_tree.h"

#include "radix_tree_internal.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace pythia {
namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// Calls `fn` on every node below `root`, parents before children; `Node` is RadixNode or
/// const RadixNode.
template <class Node, class Fn>
void visit_below(Node& root, Fn&& fn) {
  std::vector<Node*> stack;
  for (auto& kv : root.children) stack.push_back(kv.second.get());
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    fn(*node);
    for (auto& kv : node->children) stack.push_back(kv.second.get());
  }
}

using radix_detail::fail;
using radix_detail::node_name;

}  // namespace

/// The keys of a query's pages (see RadixNode::keys). Exact keys are the
/// tokens themselves, there from the start; hashed keys are computed kBatch
/// pages at a time as a lookup reaches them, so one that stops early hashes
/// little more than it compared.
class RadixTree::QueryKeys {
 public:
  /// Keys of all `num_pages` pages, `words` per page, at `keys`.
  QueryKeys(const int32_t* keys, int32_t words, int32_t num_pages)
      : keys_(keys), words_(words), end_(num_pages), num_pages_(num_pages) {}
  /// Keys of the pages of `tokens` as `tree` keys them, computed on demand.
  QueryKeys(const RadixTree& tree, const int32_t* tokens, int32_t num_pages)
      : QueryKeys(tokens, tree.key_words_, num_pages) {
    if (!tree.hashed()) return;
    hasher_ = &tree.hasher_;
    tokens_ = tokens;
    keys_ = batch_;
    end_ = 0;
  }
  QueryKeys(const QueryKeys&) = delete;
  QueryKeys& operator=(const QueryKeys&) = delete;

  /// Keys of pages [page, end()), at least one page; `page` < num_pages, and
  /// pages are asked for in nondecreasing order.
  const int32_t* at(int32_t page) {
    if (page >= end_) next_batch();
    return keys_ + static_cast<size_t>(page - begin_) * words_;
  }
  int32_t end() const { return end_; }

 private:
  static constexpr int32_t kBatch = 8;
  void next_batch() {
    const PageKey parent = end_ > 0 ? PageHasher::key_at(batch_ + (end_ - 1 - begin_) * words_) : hasher_->root();
    begin_ = end_;
    end_ = std::min(num_pages_, begin_ + kBatch);
    hasher_->chain(parent, tokens_ + static_cast<size_t>(begin_) * hasher_->page_size(), end_ - begin_, batch_);
  }

  const PageHasher* hasher_ = nullptr;
  const int32_t* tokens_ = nullptr;
  const int32_t* keys_;
  int32_t words_;
  int32_t begin_ = 0;
  int32_t end_;
  int32_t num_pages_;
  int32_t batch_[kBatch * PageHasher::kKeyWords];
};

RadixTree::RadixTree(int32_t page_size, const EvictionPolicy& policy, uint64_t hash_seed)
    : page_size_(page_size > 0 ? page_size
                               : throw std::invalid_argument("RadixTree: page_size must be positive")),
      key_words_(page_size > PageHasher::kKeyWords ? PageHasher::kKeyWords : page_size),
      hasher_(page_size, hash_seed),
      policy_(policy),
      ordered_eviction_(policy.static_priority()) {}

RadixTree::~RadixTree() {
  // Tear down iteratively: a deep chain of nodes would otherwise recurse once
  // per level through unique_ptr destructors.
  std::vector<std::unique_ptr<RadixNode>> stack;
  for (auto& kv : root_.children) stack.push_back(std::move(kv.second));
  root_.children.clear();
  while (!stack.empty()) {
    std::unique_ptr<RadixNode> node = std::move(stack.back());
    stack.pop_back();
    for (auto& kv : node->children) stack.push_back(std::move(kv.second));
    node->children.clear();
  }
}

std::vector<int32_t> RadixTree::page_keys(const int32_t* tokens, int32_t num_pages) const {
  const size_t n = static_cast<size_t>(std::max(num_pages, 0));
  if (!hashed()) return std::vector<int32_t>(tokens, tokens + n * page_size_);
  std::vector<int32_t> keys(n * key_words_);
  hasher_.chain(hasher_.root(), tokens, static_cast<int32_t>(n), keys.data());
  return keys;
}

uint64_t RadixTree::page_key(const int32_t* page_keys) const {
  if (key_words_ == 1) return static_cast<uint32_t>(page_keys[0]);
  // Four independent chains over words i, i + 4, ... folded at the end: the
  // same mixing per word as a single chain at a quarter of its serial
  // latency (every lookup computes this key before anything else).
  const auto token = [page_keys](int32_t i) { return static_cast<uint32_t>(page_keys[i]); };
  const uint64_t seed = mix64(static_cast<uint64_t>(page_size_));
  uint64_t a = seed, b = seed ^ 0x9e3779b97f4a7c15ULL, c = seed ^ 0x3c6ef372fe94f82aULL,
           d = seed ^ 0xdaa66d2c7ddf743fULL;
  int32_t i = 0;
  for (; i + 4 <= key_words_; i += 4) {
    a = mix64(a ^ token(i));
    b = mix64(b ^ token(i + 1));
    c = mix64(c ^ token(i + 2));
    d = mix64(d ^ token(i + 3));
  }
  for (; i < key_words_; ++i) a = mix64(a ^ token(i));
  const auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  return mix64(a ^ rotl(b, 16) ^ rotl(c, 32) ^ rotl(d, 48));
}

bool RadixTree::same_page(const int32_t* a, const int32_t* b) const {
  return std::memcmp(a, b, sizeof(int32_t) * key_words_) == 0;
}

RadixNode* RadixTree::find_child(const RadixNode* node, const int32_t* page_keys) const {
  auto it = node->children.find(page_key(page_keys));
  if (it == node->children.end()) return nullptr;
  RadixNode* child = it->second.get();
  return same_page(child->keys.data(), page_keys) ? child : nullptr;
}

int32_t RadixTree::equal_pages(const int32_t* a, const int32_t* b, int32_t n) const {
  if (hashed()) {
    // A batch of 16-byte keys at most: compared key by key.
    constexpr size_t kKeyBytes = PageHasher::kKeyWords * sizeof(int32_t);
    int32_t same = 0;
    while (same < n && std::memcmp(a, b, kKeyBytes) == 0) {
      ++same;
      a += PageHasher::kKeyWords;
      b += PageHasher::kKeyWords;
    }
    return same;
  }
  // Tokens: memcmp over large blocks first (libc's is vectorized; an
  // early-exit loop is not), then token by token inside the first differing block.
  constexpr size_t kBlock = 256;
  const size_t words = static_cast<size_t>(n) * key_words_;
  size_t same = 0;
  while (same + kBlock <= words && std::memcmp(a + same, b + same, kBlock * sizeof(int32_t)) == 0) {
    same += kBlock;
  }
  while (same < words && a[same] == b[same]) ++same;
  return static_cast<int32_t>(same / key_words_);
}

int32_t RadixTree::common_pages(const RadixNode* node, QueryKeys& query, int32_t pos,
                                int32_t max_pages) const {
  const int32_t limit = std::min(node->num_pages(), max_pages);
  int32_t k = 0;
  while (k < limit) {
    // As far as the query has keys (all of them but for hashed lookups).
    const int32_t* theirs = query.at(pos + k);
    const int32_t n = std::min(limit - k, query.end() - (pos + k));
    const int32_t same = equal_pages(node->keys.data() + static_cast<size_t>(k) * key_words_, theirs, n);
    k += same;
    if (same < n) break;
  }
  return k;
}

bool RadixTree::is_evictable(const RadixNode* node) const {
  return node != &root_ && node->lock_count == 0 && node->on_device() &&
         node->num_device_children == 0;
}

void RadixTree::refresh_evictable(RadixNode* node) {
  if (is_evictable(node)) {
    if (evictable_.insert(node).second && ordered_eviction_) {
      node->rank = policy_.priority(*node);
      ranked_.insert(rank_key(node));
    }
  } else if (evictable_.erase(node) && ordered_eviction_) {
    ranked_.erase(rank_key(node));
  }
}

void RadixTree::touch(RadixNode* node, uint64_t now, const WorkflowTags& user) {
  share_tags(node->tags, user);
  if (node->last_access == now) return;
  node->last_access = now;
  node->last_access_time = time_;
  reprioritize(node);
}

void RadixTree::reprioritize(RadixNode* node) {
  if (!ordered_eviction_ || !evictable_.count(node)) return;
  ranked_.erase(rank_key(node));
  node->rank = policy_.priority(*node);
  ranked_.insert(rank_key(node));
}

RadixNode* RadixTree::new_node(RadixNode* parent, const int32_t* keys, int32_t num_pages) {
  auto node = std::make_unique<RadixNode>();
  node->keys.assign(keys, keys + static_cast<size_t>(num_pages) * key_words_);
  node->parent = parent;
  node->id = next_id_++;
  node->last_access = clock_;
  node->last_access_time = time_;
  RadixNode* raw = node.get();
  parent->children[page_key(keys)] = std::move(node);
  ++num_nodes_;
  return raw;
}

RadixNode* RadixTree::split(RadixNode* node, int32_t k) {
  RadixNode* parent = node->parent;
  const uint64_t key = page_key(node->keys.data());
  std::unique_ptr<RadixNode> owned = std::move(parent->children[key]);

  auto mid = std::make_unique<RadixNode>();
  const size_t cut = static_cast<size_t>(k) * key_words_;
  mid->keys.assign(node->keys.begin(), node->keys.begin() + cut);
  node->keys.erase(node->keys.begin(), node->keys.begin() + cut);
  if (node->on_device()) {
    mid->device_pages.assign(node->device_pages.begin(), node->device_pages.begin() + k);
    node->device_pages.erase(node->device_pages.begin(), node->device_pages.begin() + k);
  }
  if (node->on_host()) {
    mid->host_pages.assign(node->host_pages.begin(), node->host_pages.begin() + k);
    node->host_pages.erase(node->host_pages.begin(), node->host_pages.begin() + k);
  }
  mid->parent = parent;
  mid->lock_count = node->lock_count;
  mid->last_access = node->last_access;
  mid->last_access_time = node->last_access_time;
  mid->tags = node->tags;
  mid->id = next_id_++;
  mid->num_device_children = node->on_device() ? 1 : 0;
  mid->num_host_children = node->on_host() ? 1 : 0;
  // Both halves are part of the same transfer; the lock it holds on `node` covers `mid` too.
  mid->backup_step = node->backup_step;
  mid->load_step = node->load_step;
  mid->hit_count = node->hit_count;
  mid->prefetched = node->prefetched;
  node->parent = mid.get();

  RadixNode* raw = mid.get();
  raw->children[page_key(node->keys.data())] = std::move(owned);
  parent->children[key] = std::move(mid);
  ++num_nodes_;
  refresh_evictable(raw);
  return raw;
}

MatchResult RadixTree::match_prefix(const int32_t* tokens, size_t n, const WorkflowTags& tags,
                                    std::vector<RadixNode*>* host_chain) {
  MatchResult result;
  const int32_t total = static_cast<int32_t>(n / page_size_);
  const uint64_t now = ++clock_;
  QueryKeys query(*this, tokens, total);
  RadixNode* node = &root_;
  int32_t pos = 0;
  while (pos < total) {
    RadixNode* child = find_child(node, query.at(pos));
    if (child == nullptr || !child->on_device()) break;
    const int32_t k = common_pages(child, query, pos, total - pos);
    const bool whole = k == child->num_pages();
    if (!whole) child = split(child, k);
    touch(child, now, tags);
    ++child->hit_count;
    result.device_pages.insert(result.device_pages.end(), child->device_pages.begin(),
                               child->device_pages.end());
    node = child;
    pos += k;
    if (!whole) break;
  }
  result.last_node = node;
  // What continues in host memory only. Without `host_chain` it is only
  // counted; with it, the nodes are collected for a load (KVCacheManager), the
  // last one split where the match ends. A node whose load is in flight is
  // on the device already and matched above.
  RadixNode* host_node = node;
  int32_t host_pos = pos;
  while (host_pos < total) {
    RadixNode* child = find_child(host_node, query.at(host_pos));
    if (child == nullptr || child->on_device() || !child->on_host()) break;
    const int32_t k = common_pages(child, query, host_pos, total - host_pos);
    const bool whole = k == child->num_pages();
    if (host_chain != nullptr) {
      if (!whole) child = split(child, k);
      touch(child, now, tags);
      ++child->hit_count;
      host_chain->push_back(child);
    }
    result.host_hit_pages += k;
    host_pos += k;
    if (!whole) break;
    host_node = child;
  }
  return result;
}

int32_t RadixTree::peek_prefix_pages(const int32_t* tokens, size_t n) const {
  const int32_t total = static_cast<int32_t>(n / page_size_);
  QueryKeys query(*this, tokens, total);
  const RadixNode* node = &root_;
  int32_t pos = 0;
  while (pos < total) {
    const RadixNode* child = find_child(node, query.at(pos));
    if (child == nullptr || !child->on_device()) break;
    const int32_t k = common_pages(child, query, pos, total - pos);
    pos += k;
    if (k < child->num_pages()) break;
    node = child;
  }
  return pos;
}

InsertResult RadixTree::insert(const int32_t* tokens, int32_t num_pages, const int32_t* pages,
                               const WorkflowTags& tags, std::vector<int32_t>* tree_pages) {
  InsertResult result;
  const uint64_t now = ++clock_;
  // Hashed keys of every page are needed: the cached ones to walk, the new
  // ones to store.
  const int32_t* keys = tokens;
  if (hashed() && num_pages > 0) {
    insert_keys_.resize(static_cast<size_t>(num_pages) * key_words_);
    hasher_.chain(hasher_.root(), tokens, num_pages, insert_keys_.data());
    keys = insert_keys_.data();
  }
  QueryKeys query(keys, key_words_, std::max(num_pages, 0));
  RadixNode* node = &root_;
  int32_t pos = 0;
  bool all_present = true;
  while (pos < num_pages) {
    const int32_t* rest = keys + static_cast<size_t>(pos) * key_words_;
    auto it = node->children.find(page_key(rest));
    if (it == node->children.end()) {
      RadixNode* leaf = new_node(node, rest, num_pages - pos);
      leaf->device_pages.assign(pages + pos, pages + num_pages);
      leaf->tags = tags;
      leaf->hit_count = 1;  // as HiCache counts an insert, so that write-through backs it up
      evictable_pages_ += leaf->num_pages();
      ++node->num_device_children;
      refresh_evictable(node);
      refresh_evictable(leaf);
      if (tree_pages) tree_pages->insert(tree_pages->end(), pages + pos, pages + num_pages);
      node = leaf;
      pos = num_pages;
      break;
    }
    RadixNode* child = it->second.get();
    // A different page filed under the same hash: keep what is cached and
    // leave the rest of this sequence uncached.
    if (!same_page(child->keys.data(), rest)) break;
    const int32_t k = common_pages(child, query, pos, num_pages - pos);
    if (k < child->num_pages()) child = split(child, k);
    if (child->on_device()) {
      if (tree_pages) {
        tree_pages->insert(tree_pages->end(), child->device_pages.begin(),
                           child->device_pages.end());
      }
      if (all_present) result.num_present = pos + k;
    } else {
      // Cached only on the host: the caller's fresh device copy fills it in.
      all_present = false;
      child->device_pages.assign(pages + pos, pages + pos + k);
      if (child->lock_count > 0) {
        protected_pages_ += k;
      } else {
        evictable_pages_ += k;
      }
      ++node->num_device_children;
      refresh_evictable(node);
      refresh_evictable(child);
      if (tree_pages) tree_pages->insert(tree_pages->end(), pages + pos, pages + pos + k);
    }
    touch(child, now, tags);
    node = child;
    pos += k;
  }
  result.num_inserted = pos;
  result.last_node = node;
  return result;
}

void RadixTree::lock(RadixNode* node) {
  for (RadixNode* n = node; n != &root_; n = n->parent) {
    if (n->lock_count == 0 && n->on_device()) {
      evictable_pages_ -= n->num_pages();
      protected_pages_ += n->num_pages();
    }
    if (++n->lock_count == 1) refresh_evictable(n);
  }
}

void RadixTree::unlock(RadixNode* node) {
  for (RadixNode* n = node; n != &root_; n = n->parent) {
    if (n->lock_count <= 0) fail("unlock of unlocked " + node_name(n));
    if (--n->lock_count == 0) {
      if (n->on_device()) {
        protected_pages_ -= n->num_pages();
        evictable_pages_ += n->num_pages();
      }
      refresh_evictable(n);
    }
  }
}

void RadixTree::delete_leaf(RadixNode* node) {
  if (!node->children.empty()) fail("cannot delete " + node_name(node) + ": it has children");
  RadixNode* parent = node->parent;
  host_leaves_.erase(node);
  parent->children.erase(page_key(node->keys.data()));
  --num_nodes_;
}

void RadixTree::remove_device_pages(RadixNode* node, std::vector<int32_t>& out) {
  out.insert(out.end(), node->device_pages.begin(), node->device_pages.end());
  evictable_pages_ -= node->num_pages();
  // Leave the ranking while the node still has its old state (and key).
  if (evictable_.erase(node) && ordered_eviction_) ranked_.erase(rank_key(node));
  node->device_pages.clear();
  RadixNode* parent = node->parent;
  --parent->num_device_children;
  if (!node->on_host()) delete_leaf(node);
  refresh_evictable(parent);
}

int32_t RadixTree::evict(int32_t num_pages, std::vector<int32_t>& out, const EvictHook& before_remove,
                         const EvictFilter& may_evict) {
  return ordered_eviction_ ? evict_in_order(num_pages, out, before_remove, may_evict)
                           : evict_by_rescan(num_pages, out, before_remove, may_evict);
}

int32_t RadixTree::evict_in_order(int32_t num_pages, std::vector<int32_t>& out,
                                  const EvictHook& before_remove, const EvictFilter& may_evict) {
  int32_t removed = 0;
  while (removed < num_pages && !ranked_.empty()) {
    RadixNode* node = ranked_.begin()->second;
    if (may_evict && !may_evict(*node)) break;
    removed += node->num_pages();
    if (before_remove) before_remove(node);
    remove_device_pages(node, out);
  }
  return removed;
}

int32_t RadixTree::evict_by_rescan(int32_t num_pages, std::vector<int32_t>& out,
                                   const EvictHook& before_remove, const EvictFilter& may_evict) {
  using Entry = std::pair<std::pair<double, uint64_t>, RadixNode*>;
  auto later = [](const Entry& a, const Entry& b) { return a.first > b.first; };
  std::vector<Entry> heap;
  heap.reserve(evictable_.size());
  for (RadixNode* node : evictable_) heap.push_back({{policy_.priority(*node), node->id}, node});
  std::make_heap(heap.begin(), heap.end(), later);

  int32_t removed = 0;
  while (removed < num_pages && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    RadixNode* node = heap.back().second;
    if (may_evict && !may_evict(*node)) break;
    heap.pop_back();
    RadixNode* parent = node->parent;
    removed += node->num_pages();
    if (before_remove) before_remove(node);
    remove_device_pages(node, out);
    if (evictable_.count(parent)) {
      heap.push_back({{policy_.priority(*parent), parent->id}, parent});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
  return removed;
}

void RadixTree::clear(std::vector<int32_t>& device_out, std::vector<int32_t>& host_out) {
  for_each_node([&](const RadixNode& node) {
    if (node.lock_count != 0) fail("clear while " + node_name(&node) + " is locked");
  });
  for_each_node([&](const RadixNode& node) {
    device_out.insert(device_out.end(), node.device_pages.begin(), node.device_pages.end());
    host_out.insert(host_out.end(), node.host_pages.begin(), node.host_pages.end());
  });
  std::vector<std::unique_ptr<RadixNode>> stack;
  for (auto& kv : root_.children) stack.push_back(std::move(kv.second));
  root_.children.clear();
  while (!stack.empty()) {
    std::unique_ptr<RadixNode> node = std::move(stack.back());
    stack.pop_back();
    for (auto& kv : node->children) stack.push_back(std::move(kv.second));
    node->children.clear();
  }
  root_.num_device_children = 0;
  root_.num_host_children = 0;
  host_leaves_.clear();
  transfers_.clear();
  evictable_.clear();
  ranked_.clear();
  evictable_pages_ = protected_pages_ = host_pages_ = num_nodes_ = 0;
}

int32_t RadixTree::retag_job(int32_t job, int32_t as_job) {
  int32_t changed = 0;
  visit_below(root_, [&](RadixNode& node) {
    if (node.tags.job != job) return;
    node.tags.job = as_job;
    reprioritize(&node);
    ++changed;
  });
  return changed;
}

void RadixTree::for_each_node(const std::function<void(const RadixNode&)>& fn) const {
  visit_below(root_, fn);
}

void RadixTree::check_integrity(
    const std::unordered_map<const RadixNode*, int32_t>& expected_locks) const {
  int32_t evictable = 0, protected_ = 0, host = 0, nodes = 0, evictable_nodes = 0;
  std::vector<const RadixNode*> stack{&root_};
  while (!stack.empty()) {
    const RadixNode* node = stack.back();
    stack.pop_back();
    int32_t device_children = 0, host_children = 0;
    for (const auto& kv : node->children) {
      const RadixNode* child = kv.second.get();
      const std::string name = node_name(child);
      if (child->parent != node) fail(name + " has a wrong parent pointer");
      if (child->keys.empty() || child->keys.size() % key_words_ != 0) {
        fail(name + " has " + std::to_string(child->keys.size()) +
             " key words, not a positive number of whole pages");
      }
      if (kv.first != page_key(child->keys.data())) fail(name + " is filed under a wrong key");
      const size_t pages = child->keys.size() / key_words_;
      if (!child->on_device() && !child->on_host()) fail(name + " has no pages in any tier");
      if (child->on_device() && child->device_pages.size() != pages) {
        fail(name + " has " + std::to_string(child->device_pages.size()) + " device pages for " +
             std::to_string(pages) + " pages of keys");
      }
      if (child->on_host() && child->host_pages.size() != pages) {
        fail(name + " has a host copy of the wrong length");
      }
      if (node != &root_ && child->on_device() && !node->on_device()) {
        fail(name + " is on the device below a parent that is not");
      }
      if (node != &root_ && child->on_host() && !node->on_host()) {
        fail(name + " has a host copy below a parent with none");
      }
      if (child->in_flight() && child->lock_count == 0) fail(name + " is in flight but not locked");
      if (child->in_flight() && !(child->on_device() && child->on_host())) {
        fail(name + " is in flight without both a device and a host copy");
      }
      if (host_leaves_.count(const_cast<RadixNode*>(child)) != (is_host_leaf(child) ? 1u : 0u)) {
        fail(name + (is_host_leaf(child) ? " is a host leaf missing from the host-leaf set"
                                         : " is in the host-leaf set but is not a host leaf"));
      }
      auto it = expected_locks.find(child);
      const int32_t want = it == expected_locks.end() ? 0 : it->second;
      if (child->lock_count != want) {
        fail(name + " has lock count " + std::to_string(child->lock_count) + ", expected " +
             std::to_string(want));
      }
      if (child->lock_count > 0 && !child->on_device()) fail(name + " is locked but not on the device");
      if (child->on_device()) {
        ++device_children;
        (child->lock_count > 0 ? protected_ : evictable) += static_cast<int32_t>(pages);
      }
      if (child->on_host()) {
        host += static_cast<int32_t>(pages);
        ++host_children;
      }
      ++nodes;
      stack.push_back(child);
    }
    if (host_children != node->num_host_children) {
      fail(node_name(node) + " counts " + std::to_string(node->num_host_children) +
           " host children, has " + std::to_string(host_children));
    }
    if (device_children != node->num_device_children) {
      fail(node_name(node) + " counts " + std::to_string(node->num_device_children) +
           " device children, has " + std::to_string(device_children));
    }
    const bool in_set = evictable_.count(const_cast<RadixNode*>(node)) > 0;
    if (in_set != is_evictable(node)) {
      fail(node_name(node) + (in_set ? " is in the evictable set but is not evictable"
                                     : " is evictable but missing from the evictable set"));
    }
    evictable_nodes += in_set ? 1 : 0;
  }
  if (evictable_nodes != static_cast<int32_t>(evictable_.size())) {
    fail("evictable set holds nodes that are not in the tree");
  }
  if (ordered_eviction_) {
    if (ranked_.size() != evictable_.size()) fail("eviction ranking and evictable set differ in size");
    for (const RankKey& key : ranked_) {
      if (!evictable_.count(key.second) || key.first.first != key.second->rank) {
        fail("eviction ranking holds a stale entry for " + node_name(key.second));
      }
      if (key.second->rank != policy_.priority(*key.second)) {
        fail(node_name(key.second) + " is ranked " + std::to_string(key.second->rank) +
             " but its priority is " + std::to_string(policy_.priority(*key.second)) +
             " (missing reprioritize?)");
      }
    }
  }
  if (evictable != evictable_pages_ || protected_ != protected_pages_) {
    fail("page counters say " + std::to_string(evictable_pages_) + " evictable / " +
         std::to_string(protected_pages_) + " protected, the tree holds " +
         std::to_string(evictable) + " / " + std::to_string(protected_));
  }
  if (host != host_pages_) fail("host page counter is off");
  if (host_leaves_.size() > static_cast<size_t>(nodes)) fail("host-leaf set holds nodes that are not in the tree");
  for (const auto& t : transfers_) {
    if (t.node->backup_step != t.step && t.node->load_step != t.step) {
      fail("transfer of step " + std::to_string(t.step) + " names " + node_name(t.node) +
           ", which is not in flight for it");
    }
  }
  if (nodes != num_nodes_) fail("node counter is off");
}

}  // namespace pythia
