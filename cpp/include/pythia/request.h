// A generation request as the scheduler core tracks it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "pythia/radix_node.h"
#include "pythia/workflow_tags.h"

namespace pythia {

enum class RequestState : uint8_t { kWaiting, kRunning };

/// \brief What the caller knows of a request beyond its tokens and tags.
struct RequestHints {
  /// At most this many leading tokens may come from the prefix cache (-1: no
  /// limit). Input logprobs need the logits of every scored position, so a
  /// request asking for them must compute those positions itself.
  int32_t max_cached_tokens = -1;
  /// P99 predicted output length from the workflow profiler (-1: none), for
  /// the "pythia" admission policy.
  int32_t predicted_output_tokens = -1;
  /// The first call of a workflow job: under "pythia" admission with a
  /// max_job_hold_s it waits while live jobs' contexts fill the pool.
  bool opens_job = false;
};

/// \brief One request: its tokens, progress and the KV pages it holds.
///
/// Prefill and decode are one mechanism: each step computes KV for positions
/// [num_computed, num_computed + n) of `tokens`; a step that reaches the end
/// of `tokens` samples the next token. A preempted request keeps its output
/// tokens and later recomputes their KV, so nothing generated is lost.
struct Request {
  int64_t id = 0;
  /// Prompt followed by the output generated so far.
  std::vector<int32_t> tokens;
  int32_t prompt_len = 0;
  int32_t max_new_tokens = 0;
  double arrival_time = 0.0;
  /// Order of arrival at the core; FCFS order and preemption order use it.
  uint64_t arrival_seq = 0;
  WorkflowTags tags;
  RequestHints hints;
  /// Forecast clock when queued (bounds that wait: SchedulerConfig::max_job_hold_s).
  double queued_at = 0.0;
  RequestState state = RequestState::kWaiting;

  /// Positions whose KV is in `pages`.
  int32_t num_computed = 0;
  /// Prompt tokens served from the prefix cache at the latest admission, and
  /// how many of them were loaded from host copies.
  int32_t num_cached = 0;
  int32_t num_host_cached = 0;
  /// Nonzero while a load its prefix needs may be in flight (the latest such
  /// step): it is not batched before every load on its path has landed.
  /// Its first batch then reports the admission's cached tokens.
  uint64_t load_step = 0;
  bool cached_reported = true;
  /// Device page table: page i holds positions [i * page_size, (i+1) * page_size).
  std::vector<int32_t> pages;
  /// Leading pages owned by the radix tree (kept alive by locking last_node);
  /// the rest belong to this request.
  int32_t num_shared_pages = 0;
  RadixNode* last_node = nullptr;
  int32_t num_preemptions = 0;
  /// Positions computed for this request, recomputation included.
  int64_t attained_service = 0;
  /// Scheduler step at which the request arrived.
  uint64_t arrival_step = 0;
  /// Scheduler step that last put this request in a batch (0: never).
  uint64_t scheduled_step = 0;

  int32_t seq_len() const { return static_cast<int32_t>(tokens.size()); }
  int32_t output_len() const { return seq_len() - prompt_len; }
  /// Leading tokens the prefix cache may serve: all but the last, which must
  /// be computed for its logits, and at most hints.max_cached_tokens.
  size_t cacheable_len() const {
    const size_t all_but_last = tokens.size() - 1;
    if (hints.max_cached_tokens < 0) return all_but_last;
    return std::min(all_but_last, static_cast<size_t>(hints.max_cached_tokens));
  }
};

}  // namespace pythia
