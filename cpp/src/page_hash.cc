#include "pythia/page_hash.h"

#include <cstring>
#include <random>
#include <stdexcept>

namespace pythia {
namespace {

__extension__ typedef unsigned __int128 u128;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t random_seed() {
  std::random_device device;
  uint64_t seed = 0;
  while (seed == 0) seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  return seed;
}

/// NH's term for one group of four tokens, read as two 64-bit words.
inline u128 nh_group(const int32_t* group, const uint64_t* k) {
  uint64_t w[2];
  std::memcpy(w, group, sizeof(w));
  return static_cast<u128>(w[0] + k[0]) * (w[1] + k[1]);
}

/// f(page): NH over the page, the last group zero-padded (every page has the
/// same length, so padding cannot make two different pages equal).
inline PageKey nh_page(const int32_t* t, int32_t page_size, const uint64_t* k) {
  u128 acc = 0;
  int32_t i = 0;
  for (; i + 4 <= page_size; i += 4, k += 2) acc += nh_group(t + i, k);
  if (i < page_size) {
    int32_t tail[4] = {0, 0, 0, 0};
    std::memcpy(tail, t + i, sizeof(int32_t) * (page_size - i));
    acc += nh_group(tail, k);
  }
  return PageKey{static_cast<uint64_t>(acc), static_cast<uint64_t>(acc >> 64)};
}

/// key = M(parent) + f. M is invertible (hi = a / odd constant, lo = b ^
/// rotl(hi, 32)), so different parents stay different, and it is cheap: it is
/// the only serial step from one page's key to the next.
inline PageKey link(const PageKey& parent, const PageKey& f) {
  const uint64_t hi_rot = (parent.hi << 32) | (parent.hi >> 32);
  return PageKey{parent.hi * 0x9e3779b97f4a7c15ULL + f.lo, (parent.lo ^ hi_rot) + f.hi};
}

}  // namespace

PageHasher::PageHasher(int32_t page_size, uint64_t seed) : page_size_(page_size) {
  if (page_size <= 0) throw std::invalid_argument("PageHasher: page_size must be positive");
  uint64_t state = seed != 0 ? seed : random_seed();
  root_ = PageKey{splitmix64(state), splitmix64(state)};
  nh_keys_.resize(2 * static_cast<size_t>((page_size + 3) / 4));
  for (uint64_t& word : nh_keys_) word = splitmix64(state);
}

PageKey PageHasher::next(const PageKey& parent, const int32_t* page_tokens) const {
  return link(parent, nh_page(page_tokens, page_size_, nh_keys_.data()));
}

void PageHasher::chain(PageKey parent, const int32_t* tokens, int32_t num_pages, int32_t* out_words) const {
  const uint64_t* k = nh_keys_.data();
  const auto store = [&](int32_t i, const PageKey& key) {
    const uint64_t halves[2] = {key.lo, key.hi};
    std::memcpy(out_words + static_cast<size_t>(i) * kKeyWords, halves, sizeof(halves));
  };
  if (page_size_ == 16) {
    // The common size, with the page loop unrolled: four multiplications a page.
    for (int32_t i = 0; i < num_pages; ++i) store(i, parent = link(parent, nh_page(tokens + static_cast<size_t>(i) * 16, 16, k)));
    return;
  }
  const size_t stride = static_cast<size_t>(page_size_);
  for (int32_t i = 0; i < num_pages; ++i) store(i, parent = link(parent, nh_page(tokens + i * stride, page_size_, k)));
}

PageKey PageHasher::key_at(const int32_t* words) {
  static_assert(sizeof(PageKey) == kKeyWords * sizeof(int32_t), "a key is kKeyWords words");
  uint64_t halves[2];
  std::memcpy(halves, words, sizeof(halves));
  return PageKey{halves[0], halves[1]};
}

}  // namespace pythia
