// The interface every request-ordering policy implements.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pythia/radix_tree.h"
#include "pythia/request.h"
#include "pythia/scheduler_config.h"
#include "pythia/workflow_forecast.h"

namespace pythia {

/// \brief What ordering policies may read beyond the requests themselves.
class SchedulingContext {
 public:
  virtual ~SchedulingContext() = default;
  virtual const RadixTree& tree() const = 0;
  /// \brief Tokens computed so far for the request's job (all its requests),
  /// or for the request alone when it carries no job tag.
  virtual int64_t attained_service(const Request& req) const = 0;
  /// \brief Predicted remaining work (tokens) of the request's job, as the
  /// workflow profiler last reported it; negative when nothing was reported.
  virtual double predicted_job_work(const Request& req) const = 0;
  /// \brief Whether finishing the request's job's calls in flight lets the
  /// job's next agent start (the profiler's judgement).
  virtual bool unblocks_downstream(const Request& req) const = 0;
  /// \brief Arrival order of the request's job (its first request), or of the
  /// request alone when it carries no job tag.
  virtual uint64_t job_arrival_seq(const Request& req) const = 0;
  /// \brief Scheduler steps since the request arrived (for aging).
  virtual uint64_t steps_waited(const Request& req) const = 0;
};

/// \brief Decides which waiting request is admitted first and which running
/// request is preempted first under memory pressure.
class SchedulePolicy {
 public:
  virtual ~SchedulePolicy() = default;
  virtual const char* name() const = 0;
  /// \brief Reorders `waiting`, given in arrival order, into admission order.
  virtual void order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const = 0;
  /// \brief Higher rank is preempted first (ties: the later arrival). The
  /// default preempts the latest arrival, as vLLM and SGLang do.
  virtual double preempt_rank(const Request& req, const SchedulingContext&) const {
    return static_cast<double>(req.arrival_seq);
  }
  /// \brief The predictions this policy reads (none for the baselines).
  virtual ForecastNeeds reads() const { return {}; }
};

/// \brief First come, first served.
class FcfsPolicy final : public SchedulePolicy {
 public:
  const char* name() const override { return "fcfs"; }
  void order_waiting(std::vector<Request*>&, const SchedulingContext&) const override {}
};

/// \brief Program-level first come, first served (Continuum): requests are
/// ordered by the arrival of their job's first request, so a job coming back
/// from a tool call goes ahead of jobs that started after it.
class ProgramFcfsPolicy final : public SchedulePolicy {
 public:
  const char* name() const override { return "pfcfs"; }
  void order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const override;
  double preempt_rank(const Request& req, const SchedulingContext& ctx) const override {
    return static_cast<double>(ctx.job_arrival_seq(req));
  }
};

/// \brief Autellix's program-level least attained service: the request whose
/// whole program (job) has received the least service so far goes first, so
/// short programs are not stuck behind long ones; under memory pressure the
/// program with the most service is preempted. Untagged requests are programs
/// of their own.
class PlasPolicy final : public SchedulePolicy {
 public:
  const char* name() const override { return "plas"; }
  void order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const override;
  double preempt_rank(const Request& req, const SchedulingContext& ctx) const override {
    return static_cast<double>(ctx.attained_service(req));
  }
};

/// \brief Longest cached prefix first (SGLang's `lpm`); ties keep arrival
/// order. Beyond `fallback_queue_len` waiting requests, matching every one
/// costs more than it gains, so it falls back to FCFS as SGLang does.
class LongestPrefixMatchPolicy final : public SchedulePolicy {
 public:
  explicit LongestPrefixMatchPolicy(size_t fallback_queue_len)
      : fallback_queue_len_(fallback_queue_len) {}
  const char* name() const override { return "lpm"; }
  void order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const override;
  size_t fallback_queue_len() const { return fallback_queue_len_; }

 private:
  size_t fallback_queue_len_;
};

/// \brief Pythia: cache-aware shortest remaining work first, over whole jobs.
/// A request's key is its predicted output less its cached prefix (the job
/// whose context is in the cache goes on first, as with lpm, which keeps the
/// working set small under memory pressure), plus its job's predicted work
/// after this call, weighted by `future_work_weight` (future calls are
/// uncertain and spread over later steps), less a bonus when its completion
/// unblocks the job's next agent, less aging so nothing starves. Under memory pressure the
/// request with the largest key (cache aside) is preempted. With no
/// prediction anywhere in the queue it orders as `lpm` does, so untagged
/// traffic gets the baseline's behaviour.
class PythiaSchedulePolicy final : public SchedulePolicy {
 public:
  PythiaSchedulePolicy(size_t lpm_fallback_queue_len, double aging_tokens_per_step,
                       double unblock_bonus_tokens, double future_work_weight)
      : lpm_(lpm_fallback_queue_len),
        aging_(aging_tokens_per_step),
        unblock_bonus_(unblock_bonus_tokens),
        future_weight_(future_work_weight) {}
  const char* name() const override { return "pythia"; }
  void order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const override;
  double preempt_rank(const Request& req, const SchedulingContext& ctx) const override {
    return work(req, ctx, 0);
  }
  ForecastNeeds reads() const override {
    ForecastNeeds needs;
    needs.job_work = true;
    return needs;
  }

 private:
  /// Remaining work of the request's job with `cached_tokens` of its prompt served by the cache.
  double work(const Request& req, const SchedulingContext& ctx, int64_t cached_tokens) const;
  LongestPrefixMatchPolicy lpm_;
  double aging_;
  double unblock_bonus_;
  double future_weight_;
};

/// \brief Names accepted by make_schedule_policy.
std::vector<std::string> schedule_policy_names();

/// \brief Builds a policy by name; throws std::invalid_argument for an
/// unknown one (SchedulerConfig::validate names the known ones).
std::unique_ptr<SchedulePolicy> make_schedule_policy(const std::string& name,
                                                     const SchedulerConfig& config);

}  // namespace pythia
