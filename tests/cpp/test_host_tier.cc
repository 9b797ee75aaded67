// The host KV tier: which pages are backed up, offloaded, loaded and dropped, in which step, per
// write policy and host policy. FakeModel executes every copy (asynchronous ones as late as the
// core allows) and checks each KV read, so a wrong table or an early read fails here too.
#include <gtest/gtest.h>

#include <vector>

#include "fake_model.h"
#include "pythia/scheduler.h"

namespace pythia {
namespace {

using testing::FakeModel;
using testing::iota_tokens;

constexpr int32_t kPage = 4;

class HostTierTest : public ::testing::Test {
 protected:
  void init(const char* write_policy, const char* host_policy = "lru", int32_t host_pages = 16) {
    SchedulerConfig c;
    c.page_size = kPage;
    c.num_device_pages = 8;
    c.num_host_pages = host_pages;
    c.max_batch_tokens = 64;
    c.host_write_policy = write_policy;
    c.host_policy = host_policy;
    sched = std::make_unique<Scheduler>(c);
    model = std::make_unique<FakeModel>(c.page_size, c.num_device_pages, c.num_host_pages);
  }
  const StepPlan& step() {
    model->step(*sched);
    sched->check_integrity();
    return model->last_plan();
  }
  void add(int64_t id, const std::vector<int32_t>& prompt, int32_t job = -1) {
    sched->add_request(id, prompt, 1, 0.0, WorkflowTags{job >= 0 ? 0 : -1, job, -1});
  }
  std::vector<int32_t> hosts_of(const std::vector<int32_t>& pairs, bool host_first) const {
    std::vector<int32_t> out;
    for (size_t i = 0; i < pairs.size(); i += 2) out.push_back(pairs[i + (host_first ? 0 : 1)]);
    return out;
  }
  void TearDown() override {
    if (sched) sched->check_integrity();
  }
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<FakeModel> model;
  const std::vector<int32_t> a = iota_tokens(0, 12);      // 3 pages
  const std::vector<int32_t> b = iota_tokens(100, 28);    // 7 pages: evicts a from the device
  std::vector<int32_t> a_again() const {
    auto p = a;
    p.push_back(50);
    return p;
  }
};

TEST_F(HostTierTest, WriteThroughBacksUpOnInsertAndLoadsAHostHitBeforeTheRequestRuns) {
  init("write_through");
  add(1, a);
  EXPECT_TRUE(step().backup_pages.empty());  // a's prefill; its pages are inserted in update()
  const StepPlan& backup = step();           // the next plan carries their backup
  EXPECT_EQ(backup.size(), 0u);
  EXPECT_EQ(backup.backup_pages, (std::vector<int32_t>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(sched->stats().host.pages_backed_up, 3);

  add(2, b);
  const StepPlan& evicting = step();
  EXPECT_TRUE(evicting.offload_pages.empty()) << "a already has a host copy: nothing to write";
  EXPECT_EQ(sched->stats().host.dropped_pages, 0);
  step();  // b's backup
  EXPECT_EQ(sched->stats().cached_host_pages, 10);

  add(3, a_again());
  const StepPlan& loading = step();
  EXPECT_EQ(loading.size(), 0u) << "request 3 must wait for its load";
  EXPECT_EQ(hosts_of(loading.load_pages, true), (std::vector<int32_t>{0, 1, 2}));
  const StepPlan& run = step();
  ASSERT_EQ(run.size(), 1u);
  EXPECT_EQ(run.req_ids[0], 3);
  EXPECT_EQ(run.start_pos[0], 12);
  EXPECT_EQ(run.cached_tokens[0], 12);
  EXPECT_EQ(run.host_cached_tokens[0], 12);
  EXPECT_EQ(sched->stats().host.host_hit_tokens, 12);
  EXPECT_EQ(sched->stats().host.pages_loaded, 3);
  EXPECT_EQ(model->output_of(3, 13), FakeModel::reference_output(a_again(), 1, true));
}

TEST_F(HostTierTest, WriteBackWritesVictimsAtEvictionInTheSameStep) {
  init("write_back");
  add(1, a);
  step();
  EXPECT_TRUE(step().backup_pages.empty());
  add(2, b);
  const StepPlan& evicting = step();
  EXPECT_EQ(hosts_of(evicting.offload_pages, false), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(sched->stats().host.pages_offloaded, 3);
  add(3, a_again());
  const StepPlan& loading = step();
  // b is written out to make room for a's load, in the same plan: offloads run first.
  EXPECT_EQ(loading.offload_pages.size(), 2u * 7);
  EXPECT_EQ(hosts_of(loading.load_pages, true), (std::vector<int32_t>{0, 1, 2}));
  const StepPlan& run = step();
  ASSERT_EQ(run.size(), 1u);
  EXPECT_EQ(run.host_cached_tokens[0], 12);
  EXPECT_EQ(model->output_of(3, 13), FakeModel::reference_output(a_again(), 1, true));
}

TEST_F(HostTierTest, WriteThroughSelectiveBacksUpOnTheSecondHitOnly) {
  init("write_through_selective");
  add(1, a);
  step();
  EXPECT_TRUE(step().backup_pages.empty());
  add(2, a_again());
  // Matching a's three pages (all but the new last token may hit) is their second hit.
  const StepPlan& admit = step();
  EXPECT_EQ(admit.backup_pages.size(), 2u * 3);
  EXPECT_EQ(sched->stats().host.pages_backed_up, 3);
}

TEST_F(HostTierTest, PythiaDropsADeadJobsPagesAndOffloadsALiveJobs) {
  init("write_back", "pythia");
  add(1, a, /*job=*/0);
  step();
  step();
  sched->forecast().end_job(0);
  add(2, b, /*job=*/1);
  EXPECT_TRUE(step().offload_pages.empty()) << "job 0 ended: its context is not worth a copy";
  EXPECT_EQ(sched->stats().host.dropped_pages, 3);
  add(3, a_again(), /*job=*/2);
  const StepPlan& admit = step();
  EXPECT_TRUE(admit.load_pages.empty());
  EXPECT_EQ(admit.offload_pages.size(), 2u * 7) << "job 1 is live: written to host when evicted";
  EXPECT_EQ(sched->stats().host.dropped_pages, 3);
}

TEST_F(HostTierTest, PythiaPrefetchesAPausedJobsContextBeforeItsPredictedCall) {
  init("write_back", "pythia");
  auto due_in = [&](int32_t job, double seconds) {
    JobForecast f;
    f.next_use = sched->forecast().now() + seconds;
    sched->forecast().set_job(job, f);
  };
  add(1, a, /*job=*/0);
  step();
  step();
  due_in(0, 100.0);  // job 0 pauses on a long tool call
  add(2, b, /*job=*/1);
  step();  // b evicts a's pages: written to host
  EXPECT_EQ(sched->stats().host.pages_offloaded, 3);
  sched->set_time(1.0);
  due_in(0, 0.5);  // a is due within the look-ahead, but b sooner: prefetch may not evict b for a
  due_in(1, 0.2);
  EXPECT_TRUE(step().load_pages.empty());
  due_in(1, 50.0);  // now b is due later: its pages make room for a
  const StepPlan& fetch = step();
  EXPECT_EQ(hosts_of(fetch.load_pages, true), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(fetch.size(), 0u);
  EXPECT_EQ(sched->stats().host.prefetched_pages, 3);
  add(3, a_again(), /*job=*/0);
  const StepPlan& run = step();
  ASSERT_EQ(run.size(), 1u);
  EXPECT_EQ(run.cached_tokens[0], 12);
  EXPECT_EQ(run.host_cached_tokens[0], 0) << "found on the device: the prefetch was on time";
  EXPECT_EQ(sched->stats().host.prefetch_on_time, 1);
  EXPECT_EQ(model->output_of(3, 13), FakeModel::reference_output(a_again(), 1, true));
}

TEST_F(HostTierTest, PythiaDropsDeadCopiesBeforeSpareCopiesOfLiveJobs) {
  init("write_through", "pythia", /*host_pages=*/6);
  add(1, a, /*job=*/0);
  step();
  step();  // a's backup
  sched->forecast().end_job(0);
  const auto c = iota_tokens(200, 12);
  add(2, c, /*job=*/1);
  step();
  step();  // c's backup: the host pool is full
  add(3, iota_tokens(400, 12), /*job=*/2);
  step();  // evicts dead a from the device: its host copy is now its only one
  step();  // the new prefix's backup needs 3 host pages
  EXPECT_EQ(sched->stats().host.host_evicted_pages, 3);
  // Dropping c's copy (spare while c is on the device) would cost a copy when c is evicted; a's
  // copy is predicted dead, so it goes first.
  add(4, a_again(), /*job=*/3);
  const StepPlan& admit = step();
  EXPECT_TRUE(admit.load_pages.empty()) << "a's dead copy should have been dropped";
  step();
  EXPECT_EQ(sched->stats().host.host_hit_tokens, 0);
}

TEST_F(HostTierTest, HostCopiesAreDroppedLeastRecentlyUsedFirst) {
  init("write_through", "lru", /*host_pages=*/4);
  add(1, a);
  step();
  step();
  add(2, iota_tokens(200, 12));
  step();
  step();
  EXPECT_EQ(sched->stats().host.host_evicted_pages, 3) << "a's copy made room for the newer prefix";
  EXPECT_EQ(sched->stats().cached_host_pages, 3);
}

TEST_F(HostTierTest, UpdateRejectsAStepWithNoTransfersBeforeChangingAnything) {
  init("write_through");
  add(1, a);
  const StepPlan& p = sched->schedule();
  std::vector<int32_t> tokens(p.size(), 1);
  std::vector<uint8_t> finished(p.size(), 0);
  EXPECT_THROW(sched->update(p.req_ids.data(), tokens.data(), finished.data(), p.size(), {p.step}),
               std::invalid_argument);
  sched->update(p.req_ids.data(), tokens.data(), finished.data(), p.size());
}

TEST(HostTierConfig, UnknownPoliciesAreRejectedByName) {
  SchedulerConfig c;
  c.num_host_pages = 8;
  c.host_write_policy = "write_around";
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.host_write_policy = "write_back";
  c.host_policy = "mru";
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace pythia
