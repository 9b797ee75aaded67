// The per-step batching and cache decisions of one model replica.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pythia/kv_cache_manager.h"
#include "pythia/request.h"
#include "pythia/schedule_policy.h"
#include "pythia/scheduler_config.h"
#include "pythia/step_plan.h"
#include "pythia/workflow_forecast.h"

namespace pythia {

/// \brief update()'s `finished` value for an entry whose step failed (the
/// forward pass or its sampling raised): the request ends, and nothing this
/// step computed for it is cached, since its KV cannot be trusted.
constexpr uint8_t kStepFailed = 2;

/// \brief Counters for metrics and tests.
struct SchedulerStats {
  int32_t num_waiting = 0;
  int32_t num_running = 0;
  int32_t free_pages = 0;
  int32_t evictable_pages = 0;
  int32_t protected_pages = 0;
  int32_t cached_host_pages = 0;
  int64_t num_preemptions = 0;
  int64_t num_evicted_pages = 0;
  /// Prompt tokens of admitted requests, and how many of them the cache served.
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  double new_token_ratio = 0.0;
  /// The host tier: its counters, free host pages, and node copies begun and
  /// not completed (including those the next plan will carry).
  HostTierStats host;
  int32_t free_host_pages = 0;
  int32_t transfers_in_flight = 0;
};

/// \brief Request table, queues and the step loop's decisions.
///
/// Protocol: add_request() at any time; then repeatedly schedule() (returns a
/// plan), run the plan, update() with what the step produced. abort() may be
/// called at any time; during a step it takes effect when update() ends.
class Scheduler : private SchedulingContext {
 public:
  explicit Scheduler(const SchedulerConfig& config);

  /// \brief Queues a request. Throws std::invalid_argument for a duplicate id,
  /// an empty prompt, a negative max_new_tokens, or a request whose prompt
  /// plus max_new_tokens could never fit in the device pool. `opens_job` in
  /// the hints counts only for a request tagged with a job.
  void add_request(int64_t id, std::vector<int32_t> prompt, int32_t max_new_tokens,
                   double arrival_time, const WorkflowTags& tags, const RequestHints& hints = {});

  /// \brief Decides the next step. Throws std::logic_error if the previous
  /// plan has not been answered by update().
  const StepPlan& schedule();
  /// \brief The plan the last schedule() returned, shared: a holder keeps it
  /// unchanged after later steps (the scheduler then writes a new plan).
  std::shared_ptr<const StepPlan> last_plan() const { return plan_; }

  /// \brief Reports the step: for entry i of the plan, the sampled token
  /// (read only where the plan's samples[i] is 1) and whether the caller
  /// finished the request (1: EOS, stop string; kStepFailed: its step
  /// failed). The core itself finishes a request at max_new_tokens. `transfers_done` lists the steps (StepPlan::
  /// step) whose page transfers have all landed since the last update; an
  /// unknown step throws std::invalid_argument before anything changes.
  /// Returns the ids finished in this step.
  std::vector<int64_t> update(const int64_t* req_ids, const int32_t* tokens,
                              const uint8_t* finished, size_t n,
                              const std::vector<uint64_t>& transfers_done = {});

  /// \brief Drops a request and frees its pages. Returns false for an
  /// unknown id.
  bool abort(int64_t id);

  /// \brief Records the workflow profiler's prediction of a job's remaining
  /// work in tokens, and whether finishing the job's calls in flight unblocks
  /// its next agent (read by the `pythia` policy); negative tokens clear it.
  void set_job_work(int32_t job, double tokens, bool unblocks = false);

  /// \brief Forgets an ended job once none of its requests is live: its
  /// cached pages become WorkflowTags::kEndedJob's (dead context) and every
  /// per-job record (forecast, predicted work, attained service, arrival
  /// order) is dropped, so a long-running server keeps nothing per finished
  /// job and the id may be reused. O(cached nodes). Throws std::logic_error
  /// while a request of the job is live. Returns the pages' node count.
  int32_t forget_job(int32_t job);

  /// \brief Advances the clock (seconds) that predictions and the prefix
  /// cache's access times are measured on. Call it before each step.
  void set_time(double now) {
    forecast_.set_time(now);
    cache_.set_time(now);
  }
  /// \brief Which predictions the configured policies read.
  ForecastNeeds forecast_needs() const;
  /// \brief The profiler's predictions, for prediction-driven policies.
  WorkflowForecast& forecast() { return forecast_; }
  const WorkflowForecast& forecast() const { return forecast_; }

  /// \brief Evicts every unlocked page of the prefix cache; returns how many.
  int32_t flush_cache();

  /// \brief Tokens (prompt + output so far) of a live request.
  const std::vector<int32_t>& tokens(int64_t id) const;
  bool has_request(int64_t id) const { return requests_.count(id) > 0; }
  /// \brief Host-tier copies begun and not completed, including those the
  /// next plan will carry: steps must go on until they land, even with no
  /// request left (their pages stay locked until then).
  bool has_pending_transfers() const { return cache_.tree().num_transfers() > 0; }
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }
  const KVCacheManager& cache() const { return cache_; }
  const SchedulePolicy& policy() const { return *policy_; }

  /// \brief Verifies every page is free, cached in the tree or held by one
  /// running request, exactly once, with consistent reference and lock
  /// counts, and that the queues agree with the request table. Throws
  /// std::logic_error naming the violation.
  void check_integrity() const;

 private:
  const RadixTree& tree() const override { return cache_.tree(); }
  int64_t attained_service(const Request& req) const override;
  double predicted_job_work(const Request& req) const override;
  bool unblocks_downstream(const Request& req) const override;
  uint64_t job_arrival_seq(const Request& req) const override;
  uint64_t steps_waited(const Request& req) const override { return step_ - req.arrival_step; }
  void schedule_running(int32_t& budget, bool& preempted);
  void admit_waiting(int32_t& budget, bool gate = true);
  /// Jobs whose first call waits unadmitted (and never ran) and that have no call
  /// running: not yet live in the pool.
  std::unordered_set<int32_t> queued_new_jobs() const;
  void add_to_plan(Request& req, int32_t num_tokens);
  /// A prefill chunk of `n` tokens for `req`, cut to what long-context isolation leaves of this
  /// step (0: none) and charged to it.
  int32_t isolate_long(const Request& req, int32_t n);
  void finish_plan();
  void preempt(Request& victim);
  int32_t reserve_tokens(const Request& req) const;
  int32_t future_pages(const Request& req) const;
  void remove_running(Request* req);
  void drop(int64_t id);

  SchedulerConfig config_;
  WorkflowForecast forecast_;  // before cache_, whose eviction policy reads it
  KVCacheManager cache_;
  std::unique_ptr<SchedulePolicy> policy_;
  std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;
  /// Arrival order, except that preempted requests go back to the front.
  std::vector<Request*> waiting_;
  /// Admission order.
  std::vector<Request*> running_;
  /// Shared so that a caller may keep a plan past the next schedule() (which
  /// then writes a new one) without copying it.
  std::shared_ptr<StepPlan> plan_ = std::make_shared<StepPlan>();
  std::vector<Request*> plan_reqs_;
  bool plan_pending_ = false;
  /// What long requests' prefill may still take of this step (long-context isolation).
  int32_t long_prefill_left_ = 0;
  std::vector<int64_t> deferred_aborts_;
  uint64_t next_arrival_seq_ = 0;
  uint64_t step_ = 0;
  double new_token_ratio_;
  const bool reserve_by_prediction_;
  int64_t num_preemptions_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t cached_prompt_tokens_ = 0;
  /// Arrival order of each job's first request, for program-level FCFS.
  std::unordered_map<int32_t, uint64_t> job_first_seq_;
  /// Service attained by each job (workflow job tag), for program-level policies.
  std::unordered_map<int32_t, int64_t> job_service_;
  /// Predicted remaining work per job, from the workflow profiler.
  struct JobWork {
    double tokens;
    bool unblocks;
  };
  std::unordered_map<int32_t, JobWork> job_work_;
};

}  // namespace pythia
