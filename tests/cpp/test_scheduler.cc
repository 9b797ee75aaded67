#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "fake_model.h"
#include "pythia/scheduler.h"

namespace pythia {
namespace {

using testing::FakeModel;
using testing::iota_tokens;

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

SchedulerConfig make_config(int32_t page_size, int32_t pages, int32_t batch_tokens,
                            int32_t max_running = 16, const char* policy = "fcfs") {
  SchedulerConfig c;
  c.page_size = page_size;
  c.num_device_pages = pages;
  c.max_batch_tokens = batch_tokens;
  c.max_running_requests = max_running;
  c.schedule_policy = policy;
  return c;
}

/// Reserve exactly `ratio` of each request's remaining output, constant over steps.
SchedulerConfig with_reserve_ratio(SchedulerConfig c, double ratio) {
  c.init_new_token_ratio = c.min_new_token_ratio = ratio;
  c.new_token_ratio_decay = 0;
  return c;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void init(const SchedulerConfig& c) {
    sched = std::make_unique<Scheduler>(c);
    model = std::make_unique<FakeModel>(c.page_size, c.num_device_pages);
  }
  std::vector<int64_t> step(bool stop_at_eos = false) {
    auto done = model->step(*sched, stop_at_eos);
    sched->check_integrity();
    return done;
  }
  void run_to_completion(bool stop_at_eos = false, int max_steps = 10000) {
    for (int i = 0; i < max_steps && (sched->stats().num_running + sched->stats().num_waiting) > 0; ++i) {
      step(stop_at_eos);
    }
    ASSERT_EQ(sched->stats().num_running + sched->stats().num_waiting, 0) << "requests never finished";
  }
  /// Runs to completion; returns the ids preempted along the way, in order.
  std::vector<int64_t> run_collecting_preemptions(int max_steps) {
    std::vector<int64_t> preempted;
    for (int i = 0; i < max_steps && sched->stats().num_running + sched->stats().num_waiting > 0; ++i) {
      step();
      const auto& ids = model->last_plan().preempted_ids;
      preempted.insert(preempted.end(), ids.begin(), ids.end());
    }
    return preempted;
  }
  void TearDown() override {
    if (sched) sched->check_integrity();
  }
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<FakeModel> model;
};

TEST_F(SchedulerTest, LongContextIsolationCapsLongPrefillsPerStepAndLetsShortCallsThrough) {
  SchedulerConfig c = make_config(4, 128, 64);
  c.long_context_tokens = 40;
  c.max_long_prefill_tokens = 16;
  init(c);
  sched->add_request(1, iota_tokens(0, 100), 1, 0.0, {});  // long: 16 tokens a step
  sched->add_request(2, iota_tokens(200, 60), 1, 0.0, {});  // long too: waits for the share
  sched->add_request(3, iota_tokens(300, 20), 1, 0.0, {});  // short: goes ahead in the same step
  step();
  const StepPlan& p = model->last_plan();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.req_ids[0], 1);
  EXPECT_EQ(p.num_tokens[0], 16);
  EXPECT_EQ(p.req_ids[1], 3);
  EXPECT_EQ(p.num_tokens[1], 20);
  step();
  EXPECT_EQ(model->last_plan().num_tokens[0], 16) << "the long prefill keeps its per-step share";
  run_to_completion();
}

TEST_F(SchedulerTest, ChunkedPrefillSpansStepsThenDecodes) {
  init(make_config(4, 64, 8));
  const auto prompt = iota_tokens(0, 30);
  sched->add_request(1, prompt, 3, 0.0, {});
  std::vector<int32_t> starts, counts, samples;
  for (int i = 0; i < 6; ++i) {
    auto done = step();
    const StepPlan& p = model->last_plan();
    ASSERT_EQ(p.size(), 1u);
    starts.push_back(p.start_pos[0]);
    counts.push_back(p.num_tokens[0]);
    samples.push_back(p.samples[0]);
    EXPECT_EQ(done.size(), i == 5 ? 1u : 0u);
  }
  EXPECT_EQ(starts, (std::vector<int32_t>{0, 8, 16, 24, 30, 31}));
  EXPECT_EQ(counts, (std::vector<int32_t>{8, 8, 8, 6, 1, 1}));
  EXPECT_EQ(samples, (std::vector<int32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(model->output_of(1, prompt.size()), FakeModel::reference_output(prompt, 3, false));
}

TEST_F(SchedulerTest, DecodesComeFirstAndPrefillTakesTheRestOfTheBudget) {
  init(make_config(4, 64, 8));
  sched->add_request(1, iota_tokens(0, 4), 10, 0.0, {});
  step();
  sched->add_request(2, iota_tokens(100, 20), 10, 0.0, {});
  step();
  const StepPlan& p = model->last_plan();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.req_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(p.num_tokens, (std::vector<int32_t>{1, 7}));
}

TEST_F(SchedulerTest, LaterRequestsReuseTheCachedPrefix) {
  init(make_config(4, 64, 64));
  const auto system = iota_tokens(0, 12);
  sched->add_request(1, system, 2, 0.0, {});
  run_to_completion();
  // Same 12 tokens then more: all three pages come from the cache.
  sched->add_request(2, concat(system, iota_tokens(500, 4)), 2, 0.0, {});
  step();
  EXPECT_EQ(model->last_plan().cached_tokens[0], 12);
  EXPECT_EQ(model->last_plan().start_pos[0], 12);
  run_to_completion();
  // Exactly the cached prompt: the last token must be recomputed for its logits,
  // so only the pages before it are reused.
  sched->add_request(3, system, 2, 0.0, {});
  step();
  EXPECT_EQ(model->last_plan().cached_tokens[0], 8);
  run_to_completion();
  EXPECT_EQ(model->output_of(3, 12), FakeModel::reference_output(system, 2, false));
  EXPECT_EQ(sched->stats().cached_prompt_tokens, 20);
  EXPECT_EQ(sched->stats().prompt_tokens, 12 + 16 + 12);
}

TEST_F(SchedulerTest, CacheLimitKeepsPositionsThatNeedLogitsComputed) {
  init(make_config(4, 64, 64));
  const auto system = iota_tokens(0, 16);
  sched->add_request(1, system, 2, 0.0, {});
  run_to_completion();
  sched->add_request(2, concat(system, iota_tokens(500, 4)), 2, 0.0, {},
                     RequestHints{/*max_cached_tokens=*/6});
  step();
  EXPECT_EQ(model->last_plan().cached_tokens[0], 4) << "6 tokens rounded down to whole pages";
  EXPECT_EQ(model->last_plan().start_pos[0], 4);
  run_to_completion();
}

TEST_F(SchedulerTest, RunningRequestsShareTheirPrefillWithNewcomers) {
  init(make_config(4, 64, 64));
  const auto prompt = iota_tokens(0, 16);
  sched->add_request(1, prompt, 20, 0.0, {});
  step();  // request 1's prompt is prefilled and published in the tree
  sched->add_request(2, prompt, 20, 0.0, {});
  step();
  const StepPlan& p = model->last_plan();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.cached_tokens[1], 12);
  // Both page tables start with the same three pages.
  EXPECT_TRUE(std::equal(p.page_table.begin(), p.page_table.begin() + 3,
                         p.page_table.begin() + p.page_table_offsets[1]));
  run_to_completion();
  EXPECT_EQ(model->output_of(2, 16), FakeModel::reference_output(prompt, 20, false));
}

TEST_F(SchedulerTest, AdmissionWaitsUntilPromptAndOutputReserveFit) {
  init(with_reserve_ratio(make_config(4, 10, 64), 1.0));
  sched->add_request(1, iota_tokens(0, 16), 8, 0.0, {});    // 6 pages with its output
  sched->add_request(2, iota_tokens(100, 16), 8, 0.0, {});  // 6 more: does not fit
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{1}));
  EXPECT_EQ(sched->stats().num_waiting, 1);
  int steps_until_admitted = 1;
  while (std::find(model->last_plan().req_ids.begin(), model->last_plan().req_ids.end(), 2) ==
         model->last_plan().req_ids.end()) {
    step();
    ++steps_until_admitted;
    ASSERT_LT(steps_until_admitted, 50);
  }
  // Request 1 prefilled, then decoded 8 tokens; 2 comes in once 1 is done.
  EXPECT_EQ(steps_until_admitted, 9);
  EXPECT_EQ(sched->stats().num_preemptions, 0);
  run_to_completion();
}

TEST_F(SchedulerTest, PreemptedRequestIsRecomputedAndProducesTheSameTokens) {
  // No output reserve: all three are admitted, decoding then runs out of pages.
  init(with_reserve_ratio(make_config(2, 12, 64), 0.0));
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(iota_tokens(100 * i, 6));
    sched->add_request(i + 1, prompts.back(), 10, 0.0, {});
  }
  const std::vector<int64_t> preempted = run_collecting_preemptions(200);
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 3) << "the latest arrival is preempted first";
  EXPECT_GT(sched->stats().num_preemptions, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(model->output_of(i + 1, 6), FakeModel::reference_output(prompts[i], 10, false))
        << "request " << i + 1;
  }
}

TEST_F(SchedulerTest, LongestPrefixMatchAdmitsTheBestCachedRequestFirst) {
  // `pythia` with no predictions in the queue orders exactly as `lpm` does.
  for (const char* policy : {"lpm", "pythia"}) {
    for (const bool fallback : {false, true}) {
      SchedulerConfig c = make_config(4, 64, 64, 1, policy);
      c.lpm_fallback_queue_len = fallback ? 1 : 128;
      init(c);
      const auto system = iota_tokens(0, 16);
      sched->add_request(1, system, 1, 0.0, {});
      run_to_completion();
      sched->add_request(2, iota_tokens(300, 12), 1, 0.0, {});
      sched->add_request(3, concat(system, iota_tokens(400, 4)), 1, 0.0, {});
      step();
      EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{fallback ? 2 : 3}))
          << policy << (fallback ? ": beyond the fallback length the order is fcfs" : "");
      run_to_completion();
    }
  }
}

TEST_F(SchedulerTest, PlasAdmitsTheProgramWithLeastAttainedServiceFirst) {
  for (const char* policy : {"fcfs", "plas"}) {
    init(make_config(4, 64, 64, 1, policy));
    sched->add_request(1, iota_tokens(0, 30), 4, 0.0, WorkflowTags{0, /*job=*/1, 0});
    run_to_completion();  // job 1 has now received 33 positions of service
    sched->add_request(2, iota_tokens(100, 8), 2, 0.0, WorkflowTags{0, 1, 0});
    sched->add_request(3, iota_tokens(200, 8), 2, 0.0, WorkflowTags{0, /*job=*/2, 0});
    step();
    const bool plas = std::string(policy) == "plas";
    EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{plas ? 3 : 2})) << policy;
    run_to_completion();
  }
}

TEST_F(SchedulerTest, PlasPreemptsTheProgramWithTheMostService) {
  // No output reserve, so both are admitted and decoding runs out of pages.
  SchedulerConfig c = with_reserve_ratio(make_config(2, 10, 64, 16, "plas"), 0.0);
  init(c);
  sched->add_request(1, iota_tokens(0, 6), 8, 0.0, WorkflowTags{0, 1, 0});  // arrives first, long program
  sched->add_request(2, iota_tokens(50, 2), 8, 0.0, WorkflowTags{0, 2, 0});
  const std::vector<int64_t> preempted = run_collecting_preemptions(100);
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 1) << "FCFS would preempt the later arrival (2); PLAS the bigger program";
}

/// `pythia` ordering that weighs the job's predicted work (off by default).
SchedulerConfig pythia_by_job_work() {
  SchedulerConfig c = make_config(4, 64, 64, 1, "pythia");
  c.future_work_weight = 0.25;
  return c;
}

TEST_F(SchedulerTest, PythiaAdmitsTheJobWithLeastPredictedWorkFirst) {
  init(pythia_by_job_work());
  sched->set_job_work(1, 1000);
  sched->set_job_work(2, 10);
  sched->add_request(1, iota_tokens(0, 8), 2, 0.0, WorkflowTags{0, 1, 0});
  sched->add_request(2, iota_tokens(100, 8), 2, 0.0, WorkflowTags{0, 2, 0});
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{2}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaCountsACachedContextAsWorkAlreadyDone) {
  init(make_config(4, 64, 64, 1, "pythia"));
  const auto context = iota_tokens(0, 40);
  sched->add_request(1, context, 1, 0.0, WorkflowTags{0, 1, 0});  // job 1's context gets cached
  run_to_completion();
  // Both jobs predict the same work after this call. Job 1's 44-token prompt has 40 tokens cached,
  // so it costs less than job 2's 8 uncached tokens.
  sched->set_job_work(1, 20);
  sched->set_job_work(2, 20);
  sched->add_request(2, iota_tokens(500, 8), 1, 0.0, WorkflowTags{0, 2, 0});
  sched->add_request(3, concat(context, iota_tokens(900, 4)), 1, 0.0, WorkflowTags{0, 1, 0});
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{3}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaAgingLetsALongJobInEventually) {
  for (const double aging : {0.0, 8.0}) {
    SchedulerConfig c = pythia_by_job_work();
    c.aging_tokens_per_step = aging;
    init(c);
    sched->set_job_work(1, 100);
    sched->set_job_work(2, 10);
    sched->add_request(10, iota_tokens(0, 4), 20, 0.0, WorkflowTags{0, 2, 0});  // runs ~20 steps
    step();
    sched->add_request(11, iota_tokens(100, 4), 2, 0.0, WorkflowTags{0, 1, 0});  // long job waits
    while (sched->has_request(10)) step();
    sched->add_request(12, iota_tokens(200, 4), 2, 0.0, WorkflowTags{0, 2, 0});  // short job, just arrived
    step();
    EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{aging > 0 ? 11 : 12})) << "aging " << aging;
    run_to_completion();
  }
}

TEST_F(SchedulerTest, ProgramFcfsPutsAReturningJobAheadOfLaterJobs) {
  init(make_config(4, 64, 64, 1, "pfcfs"));
  sched->add_request(1, iota_tokens(0, 8), 1, 0.0, WorkflowTags{0, 7, 0});  // job 7 starts first
  run_to_completion();
  sched->add_request(2, iota_tokens(100, 8), 1, 0.0, WorkflowTags{0, 8, 0});  // job 8 starts
  sched->add_request(3, iota_tokens(200, 8), 1, 0.0, WorkflowTags{0, 7, 0});  // job 7 back from a tool
  sched->add_request(4, iota_tokens(300, 8), 1, 0.0, {});                     // untagged, latest
  std::vector<int64_t> order;
  for (int i = 0; i < 3; ++i) {
    step();
    order.push_back(model->last_plan().req_ids.front());
  }
  EXPECT_EQ(order, (std::vector<int64_t>{3, 2, 4}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaUnblockBonusLetsAFanOutStragglerGoFirst) {
  SchedulerConfig c = make_config(4, 64, 64, 1, "pythia");
  c.unblock_bonus_tokens = 512;
  init(c);
  sched->set_job_work(1, 1000, /*unblocks=*/true);  // its last branch: the reviewer waits on it
  sched->set_job_work(2, 600, /*unblocks=*/false);
  sched->add_request(1, iota_tokens(0, 8), 2, 0.0, WorkflowTags{0, 1, 0});
  sched->add_request(2, iota_tokens(100, 8), 2, 0.0, WorkflowTags{0, 2, 0});
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{1}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaAdmissionReservesThePredictedOutputNotTheRatio) {
  // 12 pages of 4 tokens. Each request: an 8-token prompt (2 pages) and
  // max_new_tokens 32, of which the profiler predicts at most 4 (P99).
  for (const char* admission : {"ratio", "pythia"}) {
    SchedulerConfig c = with_reserve_ratio(make_config(4, 12, 64), 1.0);
    c.admission_policy = admission;
    init(c);
    for (int64_t id = 1; id <= 3; ++id) {
      sched->add_request(id, iota_tokens(100 * static_cast<int32_t>(id), 8), 32, 0.0, {},
                         RequestHints{-1, /*predicted_output_tokens=*/4});
    }
    step();
    // ratio: 2 + 8 pages reserved per request, only one fits; pythia: 2 + 1 each, all three do.
    EXPECT_EQ(model->last_plan().size(), std::string(admission) == "pythia" ? 3u : 1u) << admission;
    run_to_completion();
  }
}

TEST_F(SchedulerTest, AbortFreesPagesOfRunningAndWaitingRequests) {
  init(make_config(4, 64, 64, 1));
  sched->add_request(1, iota_tokens(0, 10), 50, 0.0, {});
  sched->add_request(2, iota_tokens(100, 10), 50, 0.0, {});
  step();
  EXPECT_TRUE(sched->abort(2));  // waiting
  EXPECT_TRUE(sched->abort(1));  // running
  EXPECT_FALSE(sched->abort(1));
  sched->check_integrity();
  EXPECT_EQ(sched->stats().free_pages + sched->stats().evictable_pages, 64);
  EXPECT_EQ(sched->stats().num_running + sched->stats().num_waiting, 0);
}

TEST_F(SchedulerTest, AbortDuringAStepTakesEffectAtUpdate) {
  init(make_config(4, 64, 64));
  sched->add_request(1, iota_tokens(0, 10), 50, 0.0, {});
  const StepPlan& plan = sched->schedule();
  EXPECT_TRUE(sched->abort(1));
  EXPECT_TRUE(sched->has_request(1));
  std::vector<int32_t> tokens{3};
  std::vector<uint8_t> finished{0};
  sched->update(plan.req_ids.data(), tokens.data(), finished.data(), 1);
  EXPECT_FALSE(sched->has_request(1));
}

TEST_F(SchedulerTest, PrefillOnlyRequestFinishesWithoutOutput) {
  init(make_config(4, 64, 64));
  sched->add_request(1, iota_tokens(0, 10), 0, 0.0, {});
  auto done = step();
  EXPECT_EQ(done, (std::vector<int64_t>{1}));
  EXPECT_TRUE(model->last_plan().samples[0]);
}

TEST_F(SchedulerTest, EosFromTheCallerFinishesEarly) {
  init(make_config(4, 64, 64));
  // Find a prompt whose reference output hits EOS before max_new_tokens.
  std::vector<int32_t> prompt;
  std::vector<int32_t> ref;
  for (int32_t start = 0;; ++start) {
    prompt = iota_tokens(start, 5);
    ref = FakeModel::reference_output(prompt, 40, true);
    if (ref.size() < 40) break;
  }
  sched->add_request(1, prompt, 40, 0.0, {});
  run_to_completion(/*stop_at_eos=*/true);
  EXPECT_EQ(model->output_of(1, 5), ref);
  EXPECT_EQ(ref.back(), FakeModel::kEos);
}

TEST_F(SchedulerTest, PythiaAdmissionHoldsANewJobWhileLiveContextsFillThePool) {
  SchedulerConfig c = make_config(4, 16, 64);  // a pool of 64 tokens
  c.admission_policy = "pythia";
  c.max_job_hold_s = 60.0;
  init(c);
  sched->set_time(10.0);
  sched->forecast().set_gap_distribution(0, 0, {1.0, 2.0});
  JobForecast back_soon;  // job 1: between calls for 0.1 s, expected back
  back_soon.idle_since = 9.9;
  back_soon.gap_type = back_soon.gap_agent = 0;
  back_soon.context_tokens = 40;
  sched->forecast().set_job(1, back_soon);
  JobForecast in_call;  // job 2: a call queued now
  in_call.next_use = 10.0;
  in_call.context_tokens = 10;
  sched->forecast().set_job(2, in_call);
  EXPECT_EQ(sched->forecast().live_context_tokens(), 50);
  sched->add_request(1, iota_tokens(0, 20), 2, 0.0, {0, 3, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  sched->add_request(2, iota_tokens(100, 8), 2, 0.0, {0, 1, 0});
  step();
  // 50 live + 20 > 64: the new job waits; job 1's call behind it runs.
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{2}));
  sched->forecast().end_job(1);  // 10 live + 20 fits
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{2, 1}));
  run_to_completion();
  // A job that outlasted its whole gap distribution is not held for.
  back_soon.idle_since = 5.0;
  sched->forecast().set_job(1, back_soon);
  EXPECT_EQ(sched->forecast().live_context_tokens(), 10);
}

TEST_F(SchedulerTest, PythiaAdmissionDoesNotCountQueuedNewJobsAsLive) {
  SchedulerConfig c = make_config(4, 16, 64);  // a pool of 64 tokens
  c.admission_policy = "pythia";
  c.max_job_hold_s = 60.0;
  init(c);
  JobForecast in_call;
  in_call.next_use = 0.0;
  in_call.context_tokens = 30;
  sched->forecast().set_job(2, in_call);  // a live job, 30 tokens
  // Jobs 3 and 4 open with 20-token prompts; the feed reports each as in a call from its arrival.
  in_call.context_tokens = 20;
  sched->forecast().set_job(3, in_call);
  sched->forecast().set_job(4, in_call);
  EXPECT_EQ(sched->forecast().live_context_tokens(), 70);
  EXPECT_EQ(sched->forecast().live_context_tokens({3, 4}), 30);
  sched->add_request(3, iota_tokens(0, 20), 2, 0.0, {0, 3, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  sched->add_request(4, iota_tokens(100, 20), 2, 0.0, {0, 4, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  step();
  // 30 live + 20 fits: job 3 starts (counting itself or job 4 as live would have held it); then
  // 50 + 20 does not, and job 4 waits.
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{3}));
  sched->forecast().end_job(2);  // 20 live (job 3) + 20 fits
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{3, 4}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaAdmissionDoesNotHoldAPreemptedFirstCall) {
  // 24 tokens of pool and no output reserve: three openers are admitted, then decoding runs out of
  // pages and preempts. A preempted first call's job is live; holding it again would stall it.
  SchedulerConfig c = make_config(2, 12, 64);
  c.admission_policy = "pythia";
  c.max_job_hold_s = 60.0;  // the clock never moves: a held request would wait for ever
  init(c);
  JobForecast in_call;
  in_call.next_use = 0.0;
  in_call.context_tokens = 20;  // the profiler's view of every job: in a call, 20 tokens
  for (int32_t job = 1; job <= 3; ++job) sched->forecast().set_job(job, in_call);
  for (int64_t id = 1; id <= 3; ++id) {
    sched->add_request(id, iota_tokens(100 * static_cast<int32_t>(id), 6), 10, 0.0,
                       {0, static_cast<int32_t>(id), 0}, RequestHints{-1, /*predicted_output_tokens=*/0, true});
  }
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(run_collecting_preemptions(500).empty());
  EXPECT_EQ(sched->stats().num_running + sched->stats().num_waiting, 0) << "a preempted opener was held";
}

TEST_F(SchedulerTest, PythiaAdmissionHoldsANewJobOnlyUpToMaxJobHold) {
  SchedulerConfig c = make_config(4, 16, 64);
  c.admission_policy = "pythia";
  c.max_job_hold_s = 5.0;
  init(c);
  JobForecast in_call;  // a live job whose context fills the pool, with a long call running
  in_call.next_use = 0.0;
  in_call.context_tokens = 60;
  sched->forecast().set_job(2, in_call);
  sched->add_request(2, iota_tokens(100, 8), 10, 0.0, {0, 2, 0});
  sched->add_request(1, iota_tokens(0, 20), 2, 0.0, {0, 3, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  sched->set_time(4.9);
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{2}));
  sched->set_time(5.0);
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{2, 1}));
  run_to_completion();
}

TEST_F(SchedulerTest, PythiaAdmissionDoesNotLeaveTheDeviceIdleForTheGate) {
  // The live job's context fills the pool but it is between calls: holding the new job would
  // save nothing and leave the step empty, so it runs at once (the gate is work-conserving).
  SchedulerConfig c = make_config(4, 16, 64);
  c.admission_policy = "pythia";
  c.max_job_hold_s = 60.0;
  init(c);
  sched->set_time(10.0);
  JobForecast back_soon;  // a fixed prediction (no gap distribution): back in 0.5 s
  back_soon.next_use = 10.5;
  back_soon.context_tokens = 60;
  sched->forecast().set_job(2, back_soon);
  EXPECT_EQ(sched->forecast().live_context_tokens(), 60);
  sched->add_request(1, iota_tokens(0, 20), 2, 0.0, {0, 3, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{1}));
  run_to_completion();
}

TEST_F(SchedulerTest, RatioAdmissionIgnoresTheWorkingSetGate) {
  init(make_config(4, 16, 64));
  JobForecast in_call;
  in_call.next_use = 0.0;
  in_call.context_tokens = 60;
  sched->forecast().set_job(2, in_call);
  sched->add_request(1, iota_tokens(0, 20), 2, 0.0, {0, 3, 0}, RequestHints{-1, -1, /*opens_job=*/true});
  step();
  EXPECT_EQ(model->last_plan().req_ids, (std::vector<int64_t>{1}));
  run_to_completion();
}

TEST_F(SchedulerTest, ForgettingAnEndedJobLeavesItsPagesDeadAndNothingPerJob) {
  SchedulerConfig c = make_config(4, 64, 64, 16, "pythia");
  c.eviction_policy = "pythia";
  init(c);
  sched->add_request(1, iota_tokens(0, 16), 2, 0.0, {0, 1, 0});
  sched->add_request(2, iota_tokens(100, 16), 2, 0.0, {0, 2, 0});
  sched->set_job_work(1, 10.0);
  JobForecast soon;
  soon.next_use = 1.0;
  sched->forecast().set_job(1, soon);
  sched->forecast().set_job(2, soon);
  EXPECT_THROW(sched->forget_job(1), std::logic_error);  // request 1 is live
  run_to_completion();
  EXPECT_GT(sched->forget_job(1), 0);
  EXPECT_EQ(sched->forecast().job(1), nullptr);
  const EvictionPolicy& policy = sched->cache().eviction_policy();
  double ended = 0, live = 0;
  int32_t nodes_of_job_1 = 0;
  sched->cache().tree().for_each_node([&](const RadixNode& node) {
    nodes_of_job_1 += node.tags.job == 1;
    if (node.tags.job == WorkflowTags::kEndedJob) ended = policy.priority(node);
    if (node.tags.job == 2) live = policy.priority(node);
  });
  EXPECT_EQ(nodes_of_job_1, 0);
  EXPECT_LT(ended, live) << "the forgotten job's pages are evicted first";
  // The id is free again: a new job 1 starts with no history.
  sched->add_request(3, iota_tokens(200, 8), 1, 0.0, {0, 1, 0});
  run_to_completion();
  EXPECT_THROW(sched->forget_job(-1), std::invalid_argument);
}

TEST_F(SchedulerTest, FlushEvictsEverythingUnlocked) {
  init(make_config(4, 64, 64));
  sched->add_request(1, iota_tokens(0, 16), 2, 0.0, {});
  run_to_completion();
  EXPECT_EQ(sched->stats().evictable_pages, 4);
  EXPECT_EQ(sched->flush_cache(), 4);
  EXPECT_EQ(sched->stats().free_pages, 64);
}

TEST_F(SchedulerTest, RejectsBadRequestsWithoutTouchingOthers) {
  init(make_config(4, 8, 64));
  sched->add_request(1, iota_tokens(0, 5), 3, 0.0, {});
  EXPECT_THROW(sched->add_request(1, iota_tokens(0, 5), 3, 0.0, {}), std::invalid_argument);
  EXPECT_THROW(sched->add_request(2, {}, 3, 0.0, {}), std::invalid_argument);
  EXPECT_THROW(sched->add_request(3, iota_tokens(0, 5), -1, 0.0, {}), std::invalid_argument);
  EXPECT_THROW(sched->add_request(4, iota_tokens(0, 30), 3, 0.0, {}), std::invalid_argument);
  EXPECT_EQ(sched->stats().num_waiting, 1);
  run_to_completion();
}

TEST_F(SchedulerTest, ProtocolMisuseIsReported) {
  init(make_config(4, 64, 64));
  sched->add_request(1, iota_tokens(0, 5), 3, 0.0, {});
  const StepPlan& plan = sched->schedule();
  EXPECT_THROW(sched->schedule(), std::logic_error);
  std::vector<int64_t> wrong{9};
  std::vector<int32_t> tokens{0};
  std::vector<uint8_t> finished{0};
  EXPECT_THROW(sched->update(wrong.data(), tokens.data(), finished.data(), 1), std::invalid_argument);
  EXPECT_THROW(sched->update(plan.req_ids.data(), tokens.data(), finished.data(), 0), std::invalid_argument);
  sched->update(plan.req_ids.data(), tokens.data(), finished.data(), 1);
  EXPECT_THROW(sched->update(plan.req_ids.data(), tokens.data(), finished.data(), 1), std::logic_error);
  EXPECT_EQ(sched->tokens(1).size(), 6u) << "the valid update still went through";
  EXPECT_TRUE(sched->abort(1));
}

TEST(SchedulerConfigTest, UnknownPolicyNamesAreRejectedWithTheKnownOnes) {
  SchedulerConfig c;
  c.schedule_policy = "nope";
  try {
    Scheduler s(c);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fcfs, lpm"), std::string::npos) << e.what();
  }
  c.schedule_policy = "fcfs";
  c.eviction_policy = "mru";
  EXPECT_THROW(Scheduler{c}, std::invalid_argument);
  c.eviction_policy = "lru";
  c.admission_policy = "greedy";
  EXPECT_THROW(Scheduler{c}, std::invalid_argument);
  c.admission_policy = "ratio";
  c.page_size = 0;
  EXPECT_THROW(Scheduler{c}, std::invalid_argument);
}

}  // namespace
}  // namespace pythia
