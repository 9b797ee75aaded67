// Fixed-size pool of KV-cache pages with a free list and reference counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pythia {

/// Where a page lives. A radix node may hold a copy in either tier or both.
enum class Tier : uint8_t { kDevice = 0, kHost = 1 };

/// \brief A pool of `num_pages` KV pages of `page_size` tokens each.
///
/// Pages are plain integer ids in [0, num_pages). The pool never touches KV
/// memory itself: it only decides which page ids are in use, so the same class
/// serves the device pool and the host pool. Allocation and release are O(1)
/// per page (a LIFO free list: recently freed pages are reused first, which
/// keeps the working set of a GPU pool warm in L2).
class PagePool {
 public:
  PagePool(Tier tier, int32_t num_pages);

  /// \brief Takes `n` free pages (reference count 1) and appends them to `out`.
  /// Returns false and takes nothing when fewer than `n` pages are free.
  bool allocate(int32_t n, std::vector<int32_t>& out);

  /// \brief Adds a reference to an allocated page (a second owner).
  void retain(int32_t page);

  /// \brief Drops one reference; the page returns to the free list at zero.
  void release(int32_t page);

  int32_t num_pages() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_list_.size()); }
  int32_t ref_count(int32_t page) const { return ref_counts_.at(page); }
  Tier tier() const { return tier_; }
  const char* tier_name() const { return tier_ == Tier::kDevice ? "device" : "host"; }

  /// \brief Checks that the free list holds exactly the pages with no
  /// reference and that `owners[p]`, the number of owners found by the caller
  /// for each page, equals its reference count. Throws std::logic_error naming
  /// the first violation.
  void check_integrity(const std::vector<int32_t>& owners) const;

 private:
  void check_page(int32_t page, const char* what) const;

  Tier tier_;
  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_list_;
};

}  // namespace pythia
