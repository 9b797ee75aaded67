// Exact eviction outcomes of the prediction-driven policies (pythia, kvflow,
// ttl) given the forecasts the profiler would publish.
#include <gtest/gtest.h>

#include <unordered_map>

#include "fake_model.h"
#include "pythia/radix_tree.h"

namespace pythia {
namespace {

using testing::iota_tokens;
using Pages = std::vector<int32_t>;

constexpr int32_t kType = 0, kAgentA = 10, kAgentB = 11;

WorkflowTags job_tags(int32_t job, int32_t agent = kAgentA) { return {kType, job, agent}; }

JobForecast job_next_use(double next_use) {
  JobForecast f;
  f.next_use = next_use;
  return f;
}

class EvictionPolicyTest : public ::testing::Test {
 protected:
  static constexpr int32_t kPage = 4;

  void use(const char* name) { policy = make_eviction_policy(name, forecast); tree = std::make_unique<RadixTree>(kPage, *policy); }
  /// Caches `num_pages` pages of tokens starting at `first`, numbered from `first_page`, at time `t`.
  void insert_at(double t, int32_t first, int32_t num_pages, int32_t first_page, WorkflowTags tags) {
    tree->set_time(t);
    forecast.set_time(t);
    const auto tokens = iota_tokens(first, num_pages * kPage);
    Pages pages;
    for (int32_t i = 0; i < num_pages; ++i) pages.push_back(first_page + i);
    tree->insert(tokens.data(), num_pages, pages.data(), tags);
  }
  /// Job j (1..n) caches one page, numbered 10 * j, at time j.
  void cache_one_page_per_job(int32_t n) {
    for (int32_t j = 1; j <= n; ++j) insert_at(j, 100 * (j - 1), 1, 10 * j, job_tags(j));
  }
  void now(double t) {
    tree->set_time(t);
    forecast.set_time(t);
  }
  /// Evicts one node's pages at a time; returns the first page of each, in order.
  Pages eviction_order() {
    Pages order;
    Pages out;
    while (tree->evict(1, out) > 0) {
      order.push_back(out.front());
      out.clear();
    }
    return order;
  }
  void TearDown() override { tree->check_integrity({}); }

  WorkflowForecast forecast;
  std::unique_ptr<EvictionPolicy> policy;
  std::unique_ptr<RadixTree> tree;
};

TEST(ShareTagsTest, APrefixUsedByAnotherJobBecomesTheAgentsThenTheTypes) {
  WorkflowTags owner{kType, 1, kAgentA};
  share_tags(owner, WorkflowTags{kType, 1, kAgentB});  // same job, next agent: still job 1's context
  EXPECT_EQ(owner.job, 1);
  EXPECT_EQ(owner.agent, -1);
  owner = {kType, 1, kAgentA};
  share_tags(owner, WorkflowTags{kType, 2, kAgentA});  // another job of the same agent: a system prompt
  EXPECT_EQ(owner.job, -1);
  EXPECT_EQ(owner.agent, kAgentA);
  EXPECT_EQ(owner.type, kType);
  share_tags(owner, WorkflowTags{kType, 3, kAgentB});
  EXPECT_EQ(owner.agent, -1);
  EXPECT_EQ(owner.type, kType);
  share_tags(owner, WorkflowTags{});  // untagged traffic uses it too
  EXPECT_EQ(owner.type, -1);
}

JobForecast waiting_since(double idle_since, double p_continue = 1.0) {
  JobForecast f = job_next_use(idle_since + 1.0);  // what a fixed "last call + mean gap" would say
  f.idle_since = idle_since;
  f.gap_type = kType;
  f.gap_agent = kAgentA;
  f.p_continue = p_continue;
  return f;
}

TEST(WorkflowForecastTest, NextUseIsTheRestOfTheGapGivenTheWaitSoFar) {
  WorkflowForecast forecast;
  forecast.set_gap_distribution(kType, kAgentA, {6.0, 0.1, 5.0, 0.3, 0.2});  // any order
  forecast.set_time(10.0);
  // Waited 0.05: all five samples are ahead, mean 2.32.
  EXPECT_NEAR(forecast.next_use(waiting_since(9.95)), 10.0 + 2.32 - 0.05, 1e-9);
  // Waited 1: only the long gaps remain, mean 5.5: the job is farther away than at first.
  EXPECT_NEAR(forecast.next_use(waiting_since(9.0)), 10.0 + 4.5, 1e-9);
  // A job that ends here half the time: after 1 s, P(return) = 0.5·0.4 / (0.5·0.4 + 0.5).
  EXPECT_NEAR(forecast.next_use(waiting_since(9.0, 0.5)), 10.0 + 4.5 / (0.2 / 0.7), 1e-9);
  // Waited past every sample, or never continues: never.
  EXPECT_EQ(forecast.next_use(waiting_since(3.0)), JobForecast::kNever);
  EXPECT_EQ(forecast.next_use(waiting_since(9.95, 0.0)), JobForecast::kNever);
  // Running (not waiting), or no distribution for its agent: the fixed prediction.
  JobForecast running = waiting_since(9.0);
  running.idle_since = JobForecast::kNever;
  EXPECT_EQ(forecast.next_use(running), 10.0);
  JobForecast other_agent = waiting_since(9.0);
  other_agent.gap_agent = kAgentB;
  EXPECT_EQ(forecast.next_use(other_agent), 10.0);
  EXPECT_THROW(forecast.set_gap_distribution(kType, kAgentB, {1.0, -1.0}), std::invalid_argument);
}

TEST_F(EvictionPolicyTest, MatchByAnotherJobTurnsTheSharedPartIntoAnAgentPrefix) {
  use("pythia");
  insert_at(1, 0, 3, 100, job_tags(1));  // system prompt (2 pages) + job 1's context (1 page)
  auto other = iota_tokens(0, 2 * kPage);
  auto tail = iota_tokens(500, kPage);
  other.insert(other.end(), tail.begin(), tail.end());
  MatchResult m = tree->match_prefix(other.data(), other.size(), job_tags(2));
  ASSERT_EQ(m.device_pages, (Pages{100, 101}));
  EXPECT_EQ(m.last_node->tags.job, -1);
  EXPECT_EQ(m.last_node->tags.agent, kAgentA);
  // The split-off rest is still job 1's private context.
  ASSERT_EQ(m.last_node->children.size(), 1u);
  EXPECT_EQ(m.last_node->children.begin()->second->tags.job, 1);
}

TEST_F(EvictionPolicyTest, PythiaEvictsDeadJobsThenTheFarthestPredictedUse) {
  use("pythia");
  cache_one_page_per_job(5);
  forecast.set_job(1, job_next_use(50));
  forecast.set_job(2, job_next_use(8));
  forecast.end_job(3);                      // ended through the API
  JobForecast idle = job_next_use(9);
  idle.dead_after = 6;                      // idle beyond its P99 gap at t = 7
  forecast.set_job(4, idle);
  forecast.set_job(5, job_next_use(JobForecast::kNever));  // not expected back
  now(7);
  // Dead first (older first), then never used again, then farthest next use.
  EXPECT_EQ(eviction_order(), (Pages{30, 40, 50, 10, 20}));
}

TEST_F(EvictionPolicyTest, PythiaKeepsASystemPromptWithImminentUse) {
  use("pythia");
  insert_at(1, 0, 1, 10, job_tags(1));     // becomes agent A's shared prompt below
  insert_at(2, 500, 1, 20, job_tags(2));   // job 2's private context
  auto shared = iota_tokens(0, kPage);
  tree->match_prefix(shared.data(), shared.size(), job_tags(3));
  AgentForecast prompt;
  prompt.next_use = 9;                     // a job is about to call agent A
  forecast.set_agent(kType, kAgentA, prompt);
  forecast.set_job(2, job_next_use(30));
  now(8);
  EXPECT_EQ(eviction_order(), (Pages{20, 10}));
  // With agent A not expected again, its prompt goes before job 2's context.
  insert_at(9, 0, 1, 10, job_tags(1));
  tree->match_prefix(shared.data(), shared.size(), job_tags(3));
  insert_at(9, 500, 1, 20, job_tags(2));
  prompt.next_use = JobForecast::kNever;
  forecast.set_agent(kType, kAgentA, prompt);
  EXPECT_EQ(eviction_order(), (Pages{10, 20}));
}

TEST_F(EvictionPolicyTest, WithoutMetadataPythiaKvflowAndTtlEvictInLruOrder) {
  for (const char* name : {"lru", "pythia", "kvflow", "ttl"}) {
    use(name);
    insert_at(1, 0, 1, 10, {});
    insert_at(2, 100, 1, 20, {});
    insert_at(3, 200, 1, 30, {});
    now(4);
    auto first = iota_tokens(0, kPage);
    tree->match_prefix(first.data(), first.size());  // 10 is now the most recent
    now(5);
    EXPECT_EQ(eviction_order(), (Pages{20, 30, 10})) << name;
  }
}

TEST_F(EvictionPolicyTest, KvflowEvictsTheMostStepsToExecutionFirstThenLru) {
  use("kvflow");
  cache_one_page_per_job(5);
  JobForecast f;
  f.steps_to_execution = 2;
  forecast.set_job(1, f);
  f.steps_to_execution = 0;
  forecast.set_job(2, f);
  f.steps_to_execution = 1;
  forecast.set_job(3, f);
  forecast.set_job(4, f);
  forecast.end_job(5);
  now(6);
  EXPECT_EQ(eviction_order(), (Pages{50, 10, 30, 40, 20}));
}

TEST_F(EvictionPolicyTest, TtlPinsAJobThroughItsToolCallThenFallsBackToLru) {
  use("ttl");
  insert_at(1, 0, 1, 10, job_tags(1));
  insert_at(2, 100, 1, 20, job_tags(2));
  JobForecast pinned;
  pinned.pinned_until = 20;
  forecast.set_job(1, pinned);
  now(10);
  EXPECT_EQ(eviction_order(), (Pages{20, 10}));
  insert_at(11, 0, 1, 10, job_tags(1));
  insert_at(12, 100, 1, 20, job_tags(2));
  now(21);  // the TTL ran out: plain LRU again
  EXPECT_EQ(eviction_order(), (Pages{10, 20}));
}


// Job 1 last called at t = 1, job 2 at t = 2, asked at t = 2.05; job 3 at t = 3 but
// waiting since t = -5, longer than any gap. Which job is due back first depends on
// the shape of the gap distribution, not on recency alone.
TEST_F(EvictionPolicyTest, PythiaReadsTheGapDistributionGivenTheWait) {
  use("pythia");
  cache_one_page_per_job(3);
  forecast.set_job(1, waiting_since(1.0));
  forecast.set_job(2, waiting_since(2.0));
  forecast.set_job(3, waiting_since(-5.0));
  now(2.05);
  // Heavy-tailed gaps (tool calls and long user think times): job 1, idle 1.05 s, is
  // past every tool call, so probably in a long gap: evict it before job 2 (LRU's order).
  forecast.set_gap_distribution(kType, kAgentA, {0.1, 0.2, 0.3, 5.0, 6.0});
  EXPECT_EQ(eviction_order(), (Pages{30, 10, 20}));

  cache_one_page_per_job(3);
  now(2.05);
  // Regular gaps of 1-1.3 s: job 1 is due back in 0.15 s, job 2 in 1.1 s: evict job 2
  // first (Belady's order, the reverse of LRU's).
  forecast.set_gap_distribution(kType, kAgentA, {1.0, 1.1, 1.2, 1.3});
  EXPECT_EQ(eviction_order(), (Pages{30, 20, 10}));
}

}  // namespace
}  // namespace pythia
