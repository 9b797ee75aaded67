#include <gtest/gtest.h>

#include <stdexcept>

#include "pythia/page_pool.h"

namespace pythia {
namespace {

TEST(PagePool, AllocatesLowIdsFirstAndReusesFreedPagesLifo) {
  PagePool pool(Tier::kDevice, 4);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.allocate(3, pages));
  EXPECT_EQ(pages, (std::vector<int32_t>{0, 1, 2}));
  pool.release(1);
  pages.clear();
  ASSERT_TRUE(pool.allocate(2, pages));
  EXPECT_EQ(pages, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(PagePool, FailedAllocationTakesNothing) {
  PagePool pool(Tier::kHost, 2);
  std::vector<int32_t> pages;
  EXPECT_FALSE(pool.allocate(3, pages));
  EXPECT_TRUE(pages.empty());
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(PagePool, ReferenceCountsKeepSharedPagesAlive) {
  PagePool pool(Tier::kDevice, 2);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.allocate(1, pages));
  pool.retain(pages[0]);
  pool.release(pages[0]);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.ref_count(pages[0]), 1);
  pool.release(pages[0]);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_THROW(pool.release(pages[0]), std::logic_error);
  EXPECT_THROW(pool.release(7), std::out_of_range);
}

TEST(PagePool, IntegrityNamesLeakedAndOverOwnedPages) {
  PagePool pool(Tier::kDevice, 3);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.allocate(2, pages));
  EXPECT_NO_THROW(pool.check_integrity({1, 1, 0}));
  try {
    pool.check_integrity({1, 0, 0});
    FAIL() << "a page with no owner passed";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("page 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.check_integrity({1, 1, 1}), std::logic_error);
}

}  // namespace
}  // namespace pythia
