// Keys of KV pages: a hash chain over the token ids, which the prefix tree
// stores and compares instead of copies of pages of more than four tokens.
#pragma once

#include <cstdint>
#include <vector>

namespace pythia {

/// \brief Names one page together with everything before it:
/// key(page i) = next(key(page i - 1), tokens of page i), from root().
struct PageKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const PageKey& o) const { return lo == o.lo && hi == o.hi; }
  bool operator!=(const PageKey& o) const { return !(*this == o); }
};

/// \brief Computes the key chain for one page size under a secret drawn per
/// instance.
///
/// key = M(parent key) + f(page tokens), lane-wise mod 2^64, where M is a
/// fixed bijection of the 128 bits (so keys name whole prefixes) and f is NH,
/// the universal hash of UMAC (Black, Halevi, Krawczyk, Krovetz, Rogaway,
/// CRYPTO 1999), over 64-bit words w (two tokens each) with secret key words k:
///   f = sum_i (w[2i] + k[2i]) * (w[2i+1] + k[2i+1]) mod 2^128, adds mod 2^64,
/// four 64x64->128-bit multiplications per 16 tokens.
///
/// Why a collision is not a practical risk: NH on w-bit words is
/// 2^-w-almost-universal on equal-length inputs, so for any two different
/// pages chosen without knowledge of the secret, Pr[f(p) = f(q)] <= 2^-64
/// (pages differing in one token reach that bound). The tree only compares
/// keys of pages that follow the same prefix (children of one node, or the
/// next page of a node whose earlier pages truly matched), and keys of equal
/// prefixes are equal, so a wrong match needs f(p) = f(q) for two different
/// pages exactly where a lookup leaves the cached path: at most one chance per
/// child of the node where it diverges. A server making 100 lookups and
/// inserts a second for ten years walks ~2^36 times; with 16 children at
/// every divergence point that is 2^40 chances of at most 2^-64: below 10^-7
/// per server per decade, far below the rate of undetected memory errors of
/// the same hardware. The bound holds only while the secret stays secret:
/// keys never leave the tree (not logged, not exported), and the secret comes
/// from std::random_device, so crafted prompts collide no more often than
/// random ones. A fixed, public hash would not give this: prefix-cache
/// poisoning then only needs a collision computed offline.
class PageHasher {
 public:
  /// 32-bit words a key takes (see RadixNode::keys).
  static constexpr int32_t kKeyWords = 4;

  /// `seed` 0 draws the secret from std::random_device; any other value gives
  /// a reproducible secret (tests).
  explicit PageHasher(int32_t page_size, uint64_t seed = 0);

  /// Key of the empty prefix.
  PageKey root() const { return root_; }
  /// Key of the page `page_tokens` (page_size tokens) after the prefix keyed `parent`.
  PageKey next(const PageKey& parent, const int32_t* page_tokens) const;
  /// Keys of `num_pages` consecutive pages after the prefix keyed `parent`,
  /// written as kKeyWords words each to out_words.
  void chain(PageKey parent, const int32_t* tokens, int32_t num_pages, int32_t* out_words) const;

  /// The key stored as words at `words`.
  static PageKey key_at(const int32_t* words);
  int32_t page_size() const { return page_size_; }

 private:
  int32_t page_size_;
  PageKey root_;
  /// NH key words, two per group of four tokens (the last group zero-padded).
  std::vector<uint64_t> nh_keys_;
};

}  // namespace pythia
