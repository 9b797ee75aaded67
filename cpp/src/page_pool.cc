#include "pythia/page_pool.h"

#include <stdexcept>

namespace pythia {

PagePool::PagePool(Tier tier, int32_t num_pages) : tier_(tier) {
  if (num_pages < 0) throw std::invalid_argument("PagePool: num_pages must be >= 0");
  ref_counts_.assign(num_pages, 0);
  free_list_.reserve(num_pages);
  // Highest id at the bottom so that the first allocations return 0, 1, 2...:
  // tests and logs read more easily.
  for (int32_t p = num_pages - 1; p >= 0; --p) free_list_.push_back(p);
}

bool PagePool::allocate(int32_t n, std::vector<int32_t>& out) {
  if (n < 0) throw std::invalid_argument("PagePool::allocate: negative count");
  if (n > num_free()) return false;
  for (int32_t i = 0; i < n; ++i) {
    int32_t page = free_list_.back();
    free_list_.pop_back();
    ref_counts_[page] = 1;
    out.push_back(page);
  }
  return true;
}

void PagePool::check_page(int32_t page, const char* what) const {
  if (page < 0 || page >= num_pages()) {
    throw std::out_of_range(std::string("PagePool::") + what + ": page " + std::to_string(page) +
                            " outside the " + tier_name() + " pool of " +
                            std::to_string(num_pages()));
  }
  if (ref_counts_[page] <= 0) {
    throw std::logic_error(std::string("PagePool::") + what + ": " + tier_name() + " page " +
                           std::to_string(page) + " is free");
  }
}

void PagePool::retain(int32_t page) {
  check_page(page, "retain");
  ++ref_counts_[page];
}

void PagePool::release(int32_t page) {
  check_page(page, "release");
  if (--ref_counts_[page] == 0) free_list_.push_back(page);
}

void PagePool::check_integrity(const std::vector<int32_t>& owners) const {
  const std::string pool = std::string(tier_name()) + " pool: ";
  if (owners.size() != ref_counts_.size()) {
    throw std::logic_error(pool + "owner table has the wrong size");
  }
  std::vector<char> on_free_list(ref_counts_.size(), 0);
  for (int32_t page : free_list_) {
    if (page < 0 || page >= num_pages()) {
      throw std::logic_error(pool + "free list holds out-of-range page " + std::to_string(page));
    }
    if (on_free_list[page]) {
      throw std::logic_error(pool + "page " + std::to_string(page) + " is on the free list twice");
    }
    on_free_list[page] = 1;
  }
  for (int32_t page = 0; page < num_pages(); ++page) {
    const std::string which = pool + "page " + std::to_string(page);
    if (on_free_list[page] && ref_counts_[page] != 0) {
      throw std::logic_error(which + " is on the free list with reference count " +
                             std::to_string(ref_counts_[page]));
    }
    if (!on_free_list[page] && ref_counts_[page] == 0) {
      throw std::logic_error(which + " has no reference but is not on the free list (leaked)");
    }
    if (owners[page] != ref_counts_[page]) {
      throw std::logic_error(which + " has reference count " + std::to_string(ref_counts_[page]) +
                             " but " + std::to_string(owners[page]) + " owners");
    }
  }
}

}  // namespace pythia
