// The core's face to its callers: config validation, the shared step plan,
// the forecasts policies declare, page-transfer acknowledgements.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "fake_model.h"
#include "pythia/scheduler.h"

namespace pythia {
namespace {

using testing::iota_tokens;

SchedulerConfig small_config() {
  SchedulerConfig c;
  c.page_size = 4;
  c.num_device_pages = 32;
  c.max_batch_tokens = 64;
  return c;
}

std::string validation_error(const SchedulerConfig& c) {
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(SchedulerConfigValidate, MessagesStartWithTheFieldName) {
  SchedulerConfig c = small_config();
  EXPECT_EQ(validation_error(c), "");
  c.max_batch_tokens = 0;
  EXPECT_EQ(validation_error(c).rfind("max_batch_tokens ", 0), 0u) << validation_error(c);
  c = small_config();
  c.future_work_weight = -1;
  EXPECT_EQ(validation_error(c).rfind("future_work_weight ", 0), 0u) << validation_error(c);
  c = small_config();
  c.eviction_policy = "mru";
  EXPECT_EQ(validation_error(c).rfind("eviction_policy: unknown policy 'mru' (known: lru", 0), 0u)
      << validation_error(c);
  EXPECT_THROW(Scheduler{c}, std::invalid_argument) << "the constructor validates too";
}

ForecastNeeds needs_of(const char* schedule, const char* eviction, const char* admission,
                       double hold_s = 0.0) {
  SchedulerConfig c = small_config();
  c.schedule_policy = schedule;
  c.eviction_policy = eviction;
  c.admission_policy = admission;
  c.max_job_hold_s = hold_s;
  return Scheduler(c).forecast_needs();
}

TEST(ForecastNeedsTest, EachPolicyDeclaresWhatItReads) {
  ForecastNeeds n = needs_of("lpm", "lru", "ratio");
  EXPECT_FALSE(n.job_work || n.job_forecasts || n.agent_forecasts || n.output_p99) << "the baselines read nothing";
  n = needs_of("pythia", "lru", "ratio");
  EXPECT_TRUE(n.job_work);
  EXPECT_FALSE(n.job_forecasts || n.agent_forecasts || n.output_p99);
  for (const char* eviction : {"pythia", "kvflow", "ttl"}) {
    n = needs_of("fcfs", eviction, "ratio");
    EXPECT_TRUE(n.job_forecasts && n.agent_forecasts) << eviction;
    EXPECT_FALSE(n.job_work || n.output_p99) << eviction;
  }
  n = needs_of("fcfs", "lru", "pythia");
  EXPECT_TRUE(n.output_p99);
  EXPECT_FALSE(n.job_forecasts) << "no working-set gate: no job forecasts";
  n = needs_of("fcfs", "lru", "pythia", 5.0);
  EXPECT_TRUE(n.output_p99 && n.job_forecasts) << "the gate weighs live jobs' contexts";
  EXPECT_FALSE(n.agent_forecasts);
}

TEST(StepPlanSharing, AHeldPlanSurvivesTheNextStep) {
  Scheduler sched(small_config());
  sched.add_request(1, iota_tokens(0, 10), 4, 0.0, {});
  sched.schedule();
  std::shared_ptr<const StepPlan> held = sched.last_plan();
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ(held->num_tokens[0], 10);
  const uint64_t step = held->step;
  const int32_t token = 7;
  const uint8_t finished = 0;
  sched.update(held->req_ids.data(), &token, &finished, 1);
  const StepPlan& next = sched.schedule();
  EXPECT_NE(&next, held.get()) << "a held plan is not overwritten";
  EXPECT_EQ(held->num_tokens[0], 10);
  EXPECT_EQ(next.num_tokens[0], 1);
  EXPECT_EQ(next.step, step + 1);
  const StepPlan* second = &next;
  sched.update(next.req_ids.data(), &token, &finished, 1);
  held.reset();
  EXPECT_EQ(&sched.schedule(), second) << "nobody holds the last plan: its buffers are reused";
  sched.check_integrity();
}

TEST(StepPlanSharing, UnknownTransferAcknowledgementsChangeNothing) {
  Scheduler sched(small_config());
  sched.add_request(1, iota_tokens(0, 10), 4, 0.0, {});
  const StepPlan& plan = sched.schedule();
  EXPECT_TRUE(plan.offload_pages.empty() && plan.load_pages.empty()) << "no host tier: no transfers";
  const int32_t token = 7;
  const uint8_t finished = 0;
  EXPECT_THROW(sched.update(plan.req_ids.data(), &token, &finished, 1, {plan.step}), std::invalid_argument);
  EXPECT_EQ(sched.tokens(1).size(), 10u) << "the rejected update changed nothing";
  sched.update(plan.req_ids.data(), &token, &finished, 1);
  EXPECT_EQ(sched.tokens(1).size(), 11u);
  sched.check_integrity();
}

TEST(JobForecastValidation, OutOfRangeForecastsAreRejected) {
  WorkflowForecast forecast;
  JobForecast f;
  EXPECT_THROW(forecast.set_job(-1, f), std::invalid_argument);
  f.p_continue = 1.5;
  EXPECT_THROW(forecast.set_job(0, f), std::invalid_argument);
  f.p_continue = 0.5;
  f.context_tokens = -1;
  EXPECT_THROW(forecast.set_job(0, f), std::invalid_argument);
  EXPECT_EQ(forecast.job(0), nullptr);
  f.context_tokens = 10;
  forecast.set_job(0, f);
  ASSERT_NE(forecast.job(0), nullptr);
  EXPECT_EQ(forecast.job(0)->context_tokens, 10);
}

}  // namespace
}  // namespace pythia
