#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "fake_model.h"
#include "pythia/radix_tree.h"

namespace pythia {
namespace {

using testing::iota_tokens;
using Pages = std::vector<int32_t>;

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class RadixTreeTest : public ::testing::Test {
 protected:
  static constexpr int32_t kPage = 4;
  LruEviction lru;
  RadixTree tree{kPage, lru};

  InsertResult insert(const std::vector<int32_t>& tokens, const Pages& pages,
                      WorkflowTags tags = {}) {
    return tree.insert(tokens.data(), static_cast<int32_t>(pages.size()), pages.data(), tags);
  }
  MatchResult match(const std::vector<int32_t>& tokens) {
    return tree.match_prefix(tokens.data(), tokens.size());
  }
  Pages evict(int32_t n) {
    Pages out;
    tree.evict(n, out);
    return out;
  }
  void TearDown() override { tree.check_integrity(locks_); }
  std::unordered_map<const RadixNode*, int32_t> locks_;
};

TEST_F(RadixTreeTest, EmptyTreeMatchesNothing) {
  MatchResult m = match(iota_tokens(0, 12));
  EXPECT_TRUE(m.device_pages.empty());
  EXPECT_EQ(m.last_node, tree.root());
  EXPECT_EQ(m.host_hit_pages, 0);
}

TEST_F(RadixTreeTest, MatchesWholePagesOnly) {
  const auto a = iota_tokens(0, 12);
  InsertResult ins = insert(a, {10, 11, 12});
  EXPECT_EQ(ins.num_present, 0);
  EXPECT_EQ(ins.num_inserted, 3);
  EXPECT_EQ(match(a).device_pages, (Pages{10, 11, 12}));
  // 11 tokens: the third page is incomplete and cannot be matched.
  EXPECT_EQ(match(iota_tokens(0, 11)).device_pages, (Pages{10, 11}));
  // A mismatch inside the second page stops the match after the first.
  auto b = a;
  b[5] = 99;
  EXPECT_EQ(match(b).device_pages, (Pages{10}));
  EXPECT_EQ(tree.peek_prefix_pages(b.data(), b.size()), 1);
}

TEST_F(RadixTreeTest, PartialMatchSplitsTheNodeSoItCanBeLocked) {
  insert(iota_tokens(0, 12), {10, 11, 12});
  EXPECT_EQ(tree.num_nodes(), 1);
  MatchResult m = match(concat(iota_tokens(0, 8), {99, 99, 99, 99}));
  EXPECT_EQ(tree.num_nodes(), 2);
  ASSERT_NE(m.last_node, tree.root());
  EXPECT_EQ(m.last_node->device_pages, (Pages{10, 11}));
  tree.lock(m.last_node);
  locks_[m.last_node] = 1;
  EXPECT_EQ(tree.protected_pages(), 2);
  EXPECT_EQ(tree.evictable_pages(), 1);
}

TEST_F(RadixTreeTest, InsertReportsPagesAlreadyCachedAndKeepsTheTreesIds) {
  const auto shared = iota_tokens(0, 8);
  insert(concat(shared, iota_tokens(100, 4)), {10, 11, 12});
  std::vector<int32_t> tree_pages;
  const auto b = concat(shared, iota_tokens(200, 8));
  const Pages mine{20, 21, 22, 23};
  InsertResult ins = tree.insert(b.data(), 4, mine.data(), {}, &tree_pages);
  EXPECT_EQ(ins.num_present, 2);
  EXPECT_EQ(ins.num_inserted, 4);
  EXPECT_EQ(tree_pages, (Pages{10, 11, 22, 23}));
  EXPECT_EQ(match(b).device_pages, (Pages{10, 11, 22, 23}));
  EXPECT_EQ(tree.cached_device_pages(), 5);
}

TEST_F(RadixTreeTest, NewNodesRecordTheInsertingRequestsTags) {
  InsertResult ins = insert(iota_tokens(0, 8), {1, 2}, WorkflowTags{3, 42, 5});
  EXPECT_EQ(ins.last_node->tags.job, 42);
  EXPECT_EQ(ins.last_node->tags.agent, 5);
  EXPECT_EQ(ins.last_node->tags.type, 3);
}

TEST_F(RadixTreeTest, LruEvictsLeastRecentlyUsedLeafFirst) {
  const auto a = iota_tokens(0, 8), b = iota_tokens(100, 8), c = iota_tokens(200, 8);
  insert(a, {1, 2});
  insert(b, {3, 4});
  insert(c, {5, 6});
  match(a);  // a is now the most recent
  EXPECT_EQ(evict(1), (Pages{3, 4}));  // whole nodes go: b's two pages
  EXPECT_EQ(evict(2), (Pages{5, 6}));
  EXPECT_EQ(evict(2), (Pages{1, 2}));
  EXPECT_EQ(evict(1), Pages{});
  EXPECT_EQ(tree.num_nodes(), 0);
}

TEST_F(RadixTreeTest, ParentBecomesEvictableOnlyAfterItsChildren) {
  const auto shared = iota_tokens(0, 4);
  insert(concat(shared, iota_tokens(100, 4)), {1, 2});
  insert(concat(shared, iota_tokens(200, 4)), {1, 3});
  match(concat(shared, iota_tokens(100, 4)));  // touch the first branch
  EXPECT_EQ(evict(1), (Pages{3}));
  EXPECT_EQ(evict(1), (Pages{2}));
  EXPECT_EQ(evict(1), (Pages{1}));
}

TEST_F(RadixTreeTest, LockedNodesAreNeverEvicted) {
  const auto a = iota_tokens(0, 8), b = iota_tokens(100, 8);
  insert(a, {1, 2});
  insert(b, {3, 4});
  MatchResult m = match(a);
  tree.lock(m.last_node);
  EXPECT_EQ(evict(100), (Pages{3, 4}));
  EXPECT_EQ(tree.evictable_pages(), 0);
  EXPECT_EQ(tree.protected_pages(), 2);
  EXPECT_EQ(evict(100), Pages{});
  tree.unlock(m.last_node);
  EXPECT_THROW(tree.unlock(m.last_node), std::logic_error);
  EXPECT_EQ(tree.evictable_pages(), 2);
  EXPECT_EQ(evict(100), (Pages{1, 2}));
}

TEST_F(RadixTreeTest, IntegrityCatchesALockNobodyHolds) {
  insert(iota_tokens(0, 8), {1, 2});
  MatchResult m = match(iota_tokens(0, 8));
  tree.lock(m.last_node);
  EXPECT_THROW(tree.check_integrity({}), std::logic_error);
  locks_[m.last_node] = 1;
}

TEST_F(RadixTreeTest, ClearReturnsEveryPage) {
  insert(iota_tokens(0, 8), {1, 2});
  insert(iota_tokens(0, 12), {1, 2, 3});
  Pages device, host;
  tree.clear(device, host);
  std::sort(device.begin(), device.end());
  EXPECT_EQ(device, (Pages{1, 2, 3}));
  EXPECT_TRUE(host.empty());
  EXPECT_EQ(tree.cached_device_pages(), 0);
}

TEST(RadixTreePageSizeOne, WorksTokenByToken) {
  LruEviction lru;
  RadixTree tree(1, lru);
  const std::vector<int32_t> a{5, 6, 7}, b{5, 6, 9};
  tree.insert(a.data(), 3, a.data(), {});
  InsertResult ins = tree.insert(b.data(), 3, std::vector<int32_t>{1, 2, 3}.data(), {});
  EXPECT_EQ(ins.num_present, 2);
  MatchResult m = tree.match_prefix(b.data(), 3);
  EXPECT_EQ(m.device_pages, (std::vector<int32_t>{5, 6, 3}));
  tree.check_integrity({});
}

}  // namespace
}  // namespace pythia
