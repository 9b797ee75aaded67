// Predictions about workflow jobs and agents, as the Python profiler last
// reported them (ARCHITECTURE.md §2); read by the prediction-driven policies.
#pragma once

#include <cstdint>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pythia/workflow_tags.h"

namespace pythia {

/// \brief What is predicted about one job's private context (its pages).
struct JobForecast {
  static constexpr double kNever = std::numeric_limits<double>::infinity();
  static constexpr int32_t kNoSteps = std::numeric_limits<int32_t>::max();
  /// Predicted time of the job's next call (forecast clock, seconds); the
  /// current time or earlier while a call is queued or running.
  double next_use = kNever;
  /// The job counts as dead once the clock passes this without a new call
  /// (its last event plus the P99 gap); kNever while nothing is known.
  double dead_after = kNever;
  /// Agent steps until the job runs again (KVFlow's steps-to-execution);
  /// kNoSteps when it is not expected to.
  int32_t steps_to_execution = 0;
  /// Continuum: the job's pages are pinned until this time (tool-call TTL).
  double pinned_until = -kNever;
  /// Ended through the API: its private context will not be used again.
  bool ended = false;
  /// Tokens of the job's context (its last prompt plus output).
  int32_t context_tokens = 0;
  /// Set while the job waits between calls (its last call finished then):
  /// next use is then read from the gap distribution of the agent that ran
  /// last, (gap_type, gap_agent), conditioned on the time already waited,
  /// instead of the fixed `next_use`. kNever: not waiting, or no distribution.
  double idle_since = kNever;
  int32_t gap_type = -1;
  int32_t gap_agent = -1;
  /// Probability that the job makes another call at all.
  double p_continue = 1.0;
};

/// \brief What is predicted about a prefix shared by the jobs of one agent
/// (its system prompt), or by all agents of a type (agent -1).
struct AgentForecast {
  double next_use = JobForecast::kNever;
  int32_t steps_to_execution = JobForecast::kNoSteps;
};

/// \brief Which predictions the configured policies read
/// (Scheduler::forecast_needs), so that the profiler's feed computes and sends
/// only those instead of guessing from policy names.
struct ForecastNeeds {
  /// Scheduler::set_job_work: a job's predicted remaining work (ordering).
  bool job_work = false;
  /// WorkflowForecast::set_job, end_job and the gap distributions.
  bool job_forecasts = false;
  /// WorkflowForecast::set_agent: shared prefixes' predicted next use.
  bool agent_forecasts = false;
  /// RequestHints::predicted_output_tokens (admission's reservation).
  bool output_p99 = false;

  ForecastNeeds& operator|=(const ForecastNeeds& o) {
    job_work |= o.job_work;
    job_forecasts |= o.job_forecasts;
    agent_forecasts |= o.agent_forecasts;
    output_p99 |= o.output_p99;
    return *this;
  }
};

/// \brief The clock and the latest predictions. Updated once per request
/// event from Python, never per token; lookups are hash-map reads.
class WorkflowForecast {
 public:
  double now() const { return now_; }
  void set_time(double now) { now_ = now; }

  /// Replaces everything known about the job (a job id seen again after it
  /// ended is a live job again). Throws std::invalid_argument for a negative
  /// job id, p_continue outside [0, 1] or negative context_tokens.
  void set_job(int32_t job, const JobForecast& forecast);
  void end_job(int32_t job) { jobs_[job].ended = true; }
  /// Drops what is known about a job (its pages fall back to the default rule).
  void forget_job(int32_t job) { jobs_.erase(job); }
  void set_agent(int32_t type, int32_t agent, const AgentForecast& forecast) {
    agents_[key(type, agent)] = forecast;
  }

  /// The gap between a job's call of this agent and its next call, as equally
  /// likely sample points (e.g. quantiles), any order; empty clears it.
  void set_gap_distribution(int32_t type, int32_t agent, std::vector<double> points);

  /// \brief Predicted time of the job's next call at the current time.
  ///
  /// For a waiting job with a gap distribution G it is the expected rest of
  /// the gap given the wait t so far, E[G - t | G > t], divided by the
  /// probability that the job still comes back, p·S(t) / (p·S(t) + 1 - p)
  /// (S: survival of G). Under heavy-tailed gaps the rest of the wait grows
  /// as the wait does: a job idle for long is probably in a long gap (a
  /// user's think time rather than a tool call), which a fixed prediction
  /// of "last call + mean gap" would call imminent. kNever once the wait has
  /// outlasted every sample.
  double next_use(const JobForecast& f) const;

  /// \brief Tokens of the contexts of live jobs: those with a call queued
  /// or running, and those between calls that are expected back (not dead,
  /// and next_use() is finite: a job that has outlasted its whole gap
  /// distribution, or is predicted never to call again, is not counted).
  /// Jobs in `excluded` are left out. O(jobs).
  int64_t live_context_tokens(const std::unordered_set<int32_t>& excluded = {}) const;

  /// nullptr when nothing was reported.
  const JobForecast* job(int32_t job) const {
    auto it = jobs_.find(job);
    return it == jobs_.end() ? nullptr : &it->second;
  }
  const AgentForecast* agent(int32_t type, int32_t agent) const {
    auto it = agents_.find(key(type, agent));
    return it == agents_.end() ? nullptr : &it->second;
  }
  /// Whether the job's private context is dead at the current time.
  bool is_dead(const JobForecast& f) const { return f.ended || now_ > f.dead_after; }

 private:
  static uint64_t key(int32_t type, int32_t agent) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(type)) << 32) | static_cast<uint32_t>(agent);
  }
  double now_ = 0.0;
  std::unordered_map<int32_t, JobForecast> jobs_;
  std::unordered_map<uint64_t, AgentForecast> agents_;
  /// Gap samples sorted ascending, and suffix sums for the conditional mean.
  struct GapDistribution {
    std::vector<double> points;
    std::vector<double> suffix_sum;  // suffix_sum[i] = points[i] + ... + points[n-1]
  };
  std::unordered_map<uint64_t, GapDistribution> gaps_;
};

}  // namespace pythia
