// Page keys: pages of more than four tokens are keyed by a hash chain, so a
// page's key depends on everything before it; splits keep the chain, and the
// tree agrees with a reference cache on hashed page sizes as on exact ones.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "fake_model.h"
#include "pythia/kv_cache_manager.h"
#include "pythia/page_hash.h"
#include "pythia/radix_tree.h"

namespace pythia {
namespace {

using testing::iota_tokens;
using Tokens = std::vector<int32_t>;
using Words = std::vector<int32_t>;

Tokens concat(Tokens a, const Tokens& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Words slice(const Words& w, size_t from, size_t to) { return Words(w.begin() + from, w.begin() + to); }

TEST(PageHasher, AKeyDependsOnEveryEarlierPageAndOnTheSecret) {
  for (const int32_t page : {5, 16, 33}) {
    PageHasher h(page, 42);
    const Tokens shared = iota_tokens(1000, page);
    const PageKey after_a = h.next(h.next(h.root(), iota_tokens(0, page).data()), shared.data());
    const PageKey after_b = h.next(h.next(h.root(), iota_tokens(500, page).data()), shared.data());
    EXPECT_NE(after_a, after_b) << "page " << page << ": the same tokens after different prefixes";

    const Tokens seq = concat(iota_tokens(0, page), shared);
    Words words(2 * PageHasher::kKeyWords);
    h.chain(h.root(), seq.data(), 2, words.data());
    EXPECT_EQ(PageHasher::key_at(words.data() + PageHasher::kKeyWords), after_a) << "chain() and next() agree";

    PageHasher same(page, 42), other(page, 43);
    EXPECT_EQ(same.next(same.root(), seq.data()), h.next(h.root(), seq.data()));
    EXPECT_NE(other.next(other.root(), seq.data()), h.next(h.root(), seq.data()));
  }
}

TEST(PageHasher, EveryTokenOfAPageCounts) {
  PageHasher h(16, 7);
  const Tokens page = iota_tokens(100, 16);
  const PageKey key = h.next(h.root(), page.data());
  for (int32_t i = 0; i < 16; ++i) {
    Tokens other = page;
    other[i] ^= 1;
    EXPECT_NE(h.next(h.root(), other.data()), key) << "token " << i;
  }
}

TEST(PageKeys, SmallPagesAreStoredAsTheirTokensLargerOnesAsKeys) {
  LruEviction lru;
  RadixTree exact(4, lru), hashed(16, lru);
  EXPECT_EQ(exact.key_words(), 4);
  EXPECT_EQ(hashed.key_words(), PageHasher::kKeyWords);
  const Tokens seq = iota_tokens(7, 32);
  EXPECT_EQ(exact.page_keys(seq.data(), 8), seq);
  const Words keys = hashed.page_keys(seq.data(), 2);
  EXPECT_EQ(keys.size(), 2u * PageHasher::kKeyWords);
  InsertResult ins = hashed.insert(seq.data(), 2, std::vector<int32_t>{1, 2}.data(), {});
  EXPECT_EQ(ins.last_node->keys, keys) << "a node stores 16 bytes a page, not its 64 bytes of tokens";
  exact.check_integrity({});
  hashed.check_integrity({});
}

class HashedTreeTest : public ::testing::Test {
 protected:
  static constexpr int32_t kPage = 16;
  LruEviction lru;
  RadixTree tree{kPage, lru, 12345};
  void TearDown() override { tree.check_integrity({}); }
};

TEST_F(HashedTreeTest, EqualPagesAfterDifferentPrefixesDoNotMatch) {
  const Tokens shared = iota_tokens(1000, 2 * kPage);
  const Tokens a = concat(iota_tokens(0, kPage), shared), b = concat(iota_tokens(500, kPage), shared);
  tree.insert(a.data(), 3, std::vector<int32_t>{1, 2, 3}.data(), {});
  EXPECT_TRUE(tree.match_prefix(b.data(), b.size()).device_pages.empty());
  EXPECT_EQ(tree.peek_prefix_pages(b.data(), b.size()), 0);
  EXPECT_EQ(tree.insert(b.data(), 3, std::vector<int32_t>{4, 5, 6}.data(), {}).num_present, 0);
  EXPECT_EQ(tree.match_prefix(a.data(), a.size()).device_pages, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(tree.match_prefix(b.data(), b.size()).device_pages, (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(tree.num_nodes(), 2);
}

TEST_F(HashedTreeTest, ASplitInsideANodeKeepsTheChain) {
  // 20 pages: more than one batch of the keys a lookup hashes ahead.
  const Tokens seq = iota_tokens(0, 20 * kPage);
  std::vector<int32_t> pages(20);
  for (int32_t i = 0; i < 20; ++i) pages[i] = 100 + i;
  tree.insert(seq.data(), 20, pages.data(), {});
  Tokens other = seq;
  other[11 * kPage + 3] = -5;  // differs inside page 11
  MatchResult m = tree.match_prefix(other.data(), other.size());
  ASSERT_EQ(m.device_pages, std::vector<int32_t>(pages.begin(), pages.begin() + 11));
  const Words keys = tree.page_keys(seq.data(), 20);
  constexpr size_t kWords = PageHasher::kKeyWords;
  EXPECT_EQ(m.last_node->keys, slice(keys, 0, 11 * kWords));
  ASSERT_EQ(m.last_node->children.size(), 1u);
  EXPECT_EQ(m.last_node->children.begin()->second->keys, slice(keys, 11 * kWords, keys.size()));
  EXPECT_EQ(tree.match_prefix(seq.data(), seq.size()).device_pages, pages);

  std::vector<int32_t> mine(20);
  for (int32_t i = 0; i < 20; ++i) mine[i] = 200 + i;
  std::vector<int32_t> tree_pages;
  InsertResult ins = tree.insert(other.data(), 20, mine.data(), {}, &tree_pages);
  EXPECT_EQ(ins.num_present, 11);
  const Words other_keys = tree.page_keys(other.data(), 20);
  EXPECT_EQ(ins.last_node->keys, slice(other_keys, 11 * kWords, other_keys.size()));
  EXPECT_EQ(slice(other_keys, 0, 11 * kWords), slice(keys, 0, 11 * kWords)) << "a shared prefix, shared keys";
  EXPECT_EQ(tree.match_prefix(other.data(), other.size()).device_pages, tree_pages);
}

TEST_F(HashedTreeTest, IntegrityCatchesAChildFiledUnderAnotherKey) {
  const Tokens seq = iota_tokens(0, 2 * kPage);
  InsertResult ins = tree.insert(seq.data(), 2, std::vector<int32_t>{1, 2}.data(), {});
  ins.last_node->keys[1] ^= 1;
  EXPECT_THROW(tree.check_integrity({}), std::logic_error);
  ins.last_node->keys[1] ^= 1;
}

TEST(PageKeys, CacheIntegrityRecomputesEachHoldersPathFromItsTokens) {
  for (const int32_t page : {4, 16}) {
    KVCacheManager cache(page, 64, 0, std::make_unique<LruEviction>());
    Request req;
    req.id = 1;
    req.tokens = iota_tokens(0, 3 * page + 1);
    req.prompt_len = static_cast<int32_t>(req.tokens.size());
    cache.attach_prefix(req);
    ASSERT_TRUE(cache.grow(req, req.seq_len()));
    req.num_computed = 3 * page;
    cache.cache_prefix(req);
    ASSERT_EQ(req.num_shared_pages, 3);
    EXPECT_NO_THROW(cache.check_integrity({&req}));
    req.tokens[page + 2] = -1;  // the path no longer spells the request's tokens
    EXPECT_THROW(cache.check_integrity({&req}), std::logic_error) << "page " << page;
    req.tokens[page + 2] = page + 2;
    EXPECT_NO_THROW(cache.check_integrity({&req}));
    cache.release(req);
  }
}

TEST(PageKeysRandomized, TreeAgreesWithAReferenceCacheOnHashedPageSizes) {
  for (const int32_t page : {5, 8, 16}) {
    std::mt19937 rng(99 + page);
    LruEviction lru;
    RadixTree tree(page, lru);
    std::map<Tokens, int32_t> ref;  // tokens of pages [0, k] -> page id of page k
    std::map<int32_t, Tokens> owner;
    int32_t next_page = 0;
    auto ref_match = [&](const Tokens& seq) {
      std::vector<int32_t> pages;
      for (size_t k = 1; k * page <= seq.size(); ++k) {
        auto it = ref.find(Tokens(seq.begin(), seq.begin() + k * page));
        if (it == ref.end()) break;
        pages.push_back(it->second);
      }
      return pages;
    };
    for (int op = 0; op < 2000; ++op) {
      // Two token values and up to 30 pages: long shared prefixes, splits
      // inside nodes and walks past a batch of hashed keys.
      Tokens seq(std::uniform_int_distribution<int>(0, 30 * page + 3)(rng));
      for (auto& t : seq) t = std::uniform_int_distribution<int>(0, 9)(rng) == 0;
      const int32_t n = static_cast<int32_t>(seq.size()) / page;
      const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      if (kind < 5) {
        std::vector<int32_t> pages(n);
        for (auto& p : pages) p = next_page++;
        const auto before = ref_match(seq);
        InsertResult ins = tree.insert(seq.data(), n, pages.data(), {});
        ASSERT_EQ(ins.num_present, static_cast<int32_t>(before.size()));
        ASSERT_EQ(ins.num_inserted, n);
        for (int32_t k = 1; k <= n; ++k) {
          const Tokens key(seq.begin(), seq.begin() + k * page);
          if (ref.emplace(key, pages[k - 1]).second) owner[pages[k - 1]] = key;
        }
      } else if (kind < 8) {
        const auto want = ref_match(seq);
        ASSERT_EQ(tree.peek_prefix_pages(seq.data(), seq.size()), static_cast<int32_t>(want.size()));
        ASSERT_EQ(tree.match_prefix(seq.data(), seq.size()).device_pages, want);
      } else {
        std::vector<int32_t> out;
        tree.evict(std::uniform_int_distribution<int>(1, 6)(rng), out);
        for (int32_t p : out) {
          ASSERT_EQ(owner.count(p), 1u) << "evicted an uncached page";
          ref.erase(owner[p]);
          owner.erase(p);
        }
      }
      ASSERT_NO_THROW(tree.check_integrity({})) << "page " << page << ", op " << op;
      ASSERT_EQ(static_cast<size_t>(tree.cached_device_pages()), ref.size());
    }
  }
}

}  // namespace
}  // namespace pythia
