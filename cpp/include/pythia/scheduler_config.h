// Every setting of the scheduler core.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pythia {

/// \brief Names accepted as SchedulerConfig::admission_policy.
std::vector<std::string> admission_policy_names();
/// \brief Names accepted as SchedulerConfig::host_policy.
std::vector<std::string> host_policy_names();

/// \brief Settings of one Scheduler (one model replica).
struct SchedulerConfig {
  /// Tokens per KV page.
  int32_t page_size = 16;
  /// Pages in the device KV pool.
  int32_t num_device_pages = 4096;
  /// Pages in the host KV pool (0: no host tier).
  int32_t num_host_pages = 0;
  /// With a host tier: when device pages get a host copy, a name from
  /// host_write_policy_names() (SGLang's --hicache-write-policy).
  std::string host_write_policy = "write_through";
  /// With a host tier: "lru" (HiCache: host copies dropped least recently
  /// used first; evicted device pages without a copy are lost, except under
  /// write_back) or "pythia" (every device eviction writes the victim to host
  /// unless the profiler predicts it is never used again; host copies dropped
  /// farthest predicted next use first, dead jobs' first).
  std::string host_policy = "lru";
  /// `pythia` host policy: a paused job's context written to host is loaded
  /// back (into free device pages) once its next call is predicted within
  /// this many seconds; 0 turns prefetch off.
  double host_prefetch_s = 1.0;
  /// Most requests decoding or prefilling at once.
  int32_t max_running_requests = 256;
  /// Tokens computed per step, decode and prefill together; prompts longer
  /// than what is left of it are prefilled in chunks over several steps.
  int32_t max_batch_tokens = 8192;
  /// Request order: a name from schedule_policy_names().
  std::string schedule_policy = "fcfs";
  /// Prefix-cache eviction: a name from eviction_policy_names().
  std::string eviction_policy = "lru";
  /// Output KV reserved at admission: "ratio" (SGLang: new_token_ratio of
  /// max_new_tokens, optimistic, preempting when it runs out) or "pythia"
  /// (the request's P99 predicted output where one was given, else "ratio").
  std::string admission_policy = "ratio";
  /// Waiting requests beyond which `lpm` falls back to FCFS (SGLang uses 128).
  int32_t lpm_fallback_queue_len = 128;
  /// `pythia` ordering: a waiting request's predicted work shrinks by this many
  /// tokens per step it waits, so that long jobs are admitted eventually.
  double aging_tokens_per_step = 1.0;
  /// `pythia` ordering: a request whose completion unblocks its job's next
  /// agent (the job's last call in flight, e.g. the straggler of a fan-out)
  /// counts this many tokens less work.
  double unblock_bonus_tokens = 512.0;
  /// `pythia` ordering: weight of the job's predicted work after the current
  /// call against the current call's own (certain, immediate) cost. 0 by
  /// default: measured under memory pressure (coding agent), ranking jobs by
  /// their predicted work overrode cache locality and cost hit rate and JCT
  /// (benchmarks/RESULTS.md); without queueing it changed nothing.
  double future_work_weight = 0.0;
  /// `pythia` admission: a job's first call waits at most this long (seconds
  /// on the forecast clock) for live jobs' contexts to leave room in the pool
  /// (the working-set gate); 0 turns the gate off. The gate never leaves the
  /// device idle: with nothing running, held jobs go ahead. On by default:
  /// simulated at GPU scale past the session workloads' knees it keeps the
  /// pool from thrashing (mean JCT 1.7x-2.5x lower at the peaks), and it changes nothing
  /// where live contexts fit (benchmarks/RESULTS.md). The bound is long
  /// against a session's calls and short against its life.
  double max_job_hold_s = 300.0;
  /// Long-context isolation: a request whose prompt has at least
  /// long_context_tokens tokens is long, and long requests' prefill chunks
  /// together get at most max_long_prefill_tokens of a step (0: no cap), so
  /// that long prompts do not starve short calls of the step's budget.
  int32_t long_context_tokens = 4096;
  int32_t max_long_prefill_tokens = 0;
  /// Admission reserves KV for this fraction of each request's remaining
  /// max_new_tokens (SGLang's new_token_ratio). It decays step by step from
  /// the initial value to the minimum while nothing is preempted and jumps
  /// back to the initial value on a preemption.
  double init_new_token_ratio = 0.7;
  double min_new_token_ratio = 0.14;
  double new_token_ratio_decay = (0.7 - 0.14) / 600.0;
  /// Remaining output counted in the reservation is clipped to this many
  /// tokens, so one huge max_new_tokens does not block all admission.
  int32_t reserve_clip_tokens = 4096;

  /// \brief Throws std::invalid_argument naming the first setting out of
  /// range or the unknown policy name. The message starts with the field's
  /// name, so a front end can say which of its own flags set it.
  void validate() const;
};

}  // namespace pythia
