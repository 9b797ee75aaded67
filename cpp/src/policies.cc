#include <algorithm>
#include <stdexcept>

#include "pythia/eviction_policy.h"
#include "pythia/schedule_policy.h"

namespace pythia {
void LongestPrefixMatchPolicy::order_waiting(std::vector<Request*>& waiting,
                                             const SchedulingContext& ctx) const {
  if (waiting.size() > fallback_queue_len_) return;
  const RadixTree& tree = ctx.tree();
  std::vector<std::pair<int32_t, Request*>> keyed;
  keyed.reserve(waiting.size());
  for (Request* req : waiting) {
    keyed.emplace_back(tree.peek_prefix_pages(req->tokens.data(), req->cacheable_len()), req);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < keyed.size(); ++i) waiting[i] = keyed[i].second;
}

void ProgramFcfsPolicy::order_waiting(std::vector<Request*>& waiting,
                                      const SchedulingContext& ctx) const {
  std::stable_sort(waiting.begin(), waiting.end(), [&](const Request* a, const Request* b) {
    return ctx.job_arrival_seq(*a) < ctx.job_arrival_seq(*b);
  });
}

void PlasPolicy::order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const {
  std::vector<std::pair<int64_t, Request*>> keyed;
  keyed.reserve(waiting.size());
  for (Request* req : waiting) keyed.emplace_back(ctx.attained_service(*req), req);
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < keyed.size(); ++i) waiting[i] = keyed[i].second;
}

double PythiaSchedulePolicy::work(const Request& req, const SchedulingContext& ctx,
                                  int64_t cached_tokens) const {
  const int32_t out = req.output_len();
  const int32_t expected_out = req.hints.predicted_output_tokens >= 0
                                   ? std::min(req.hints.predicted_output_tokens, req.max_new_tokens)
                                   : req.max_new_tokens;
  // Reused context counts for the request, not just as prefill saved: under memory pressure, going
  // on with the jobs whose contexts are cached keeps the working set small (lpm's strength), while
  // starting new jobs first makes every job's context thrash.
  const double own = static_cast<double>(std::max(expected_out - out, 0) - cached_tokens);
  const double future = std::max(ctx.predicted_job_work(req), 0.0);
  return own + future_weight_ * future;
}

void PythiaSchedulePolicy::order_waiting(std::vector<Request*>& waiting, const SchedulingContext& ctx) const {
  const bool any_prediction = std::any_of(waiting.begin(), waiting.end(), [&](const Request* r) {
    return ctx.predicted_job_work(*r) >= 0;
  });
  if (!any_prediction) {
    lpm_.order_waiting(waiting, ctx);
    return;
  }
  // The cached prefix counts against the key (see work(); among equal jobs this is
  // longest-prefix-match). Past the lpm queue limit the prefix lookups are skipped, as lpm skips them.
  const bool look_up_prefixes = waiting.size() <= lpm_.fallback_queue_len();
  const RadixTree& tree = ctx.tree();
  std::vector<std::pair<double, Request*>> keyed;
  keyed.reserve(waiting.size());
  for (Request* req : waiting) {
    int64_t cached = 0;
    if (look_up_prefixes) {
      cached = static_cast<int64_t>(tree.peek_prefix_pages(req->tokens.data(), req->cacheable_len())) *
               tree.page_size();
    }
    const double bonus = ctx.unblocks_downstream(*req) ? unblock_bonus_ : 0.0;
    keyed.emplace_back(work(*req, ctx, cached) - bonus - aging_ * static_cast<double>(ctx.steps_waited(*req)),
                       req);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < keyed.size(); ++i) waiting[i] = keyed[i].second;
}

std::vector<std::string> schedule_policy_names() { return {"fcfs", "lpm", "pfcfs", "plas", "pythia"}; }

std::unique_ptr<SchedulePolicy> make_schedule_policy(const std::string& name,
                                                     const SchedulerConfig& config) {
  const auto fallback = static_cast<size_t>(config.lpm_fallback_queue_len);
  if (name == "fcfs") return std::make_unique<FcfsPolicy>();
  if (name == "lpm") return std::make_unique<LongestPrefixMatchPolicy>(fallback);
  if (name == "pfcfs") return std::make_unique<ProgramFcfsPolicy>();
  if (name == "plas") return std::make_unique<PlasPolicy>();
  if (name == "pythia") {
    return std::make_unique<PythiaSchedulePolicy>(fallback, config.aging_tokens_per_step,
                                                  config.unblock_bonus_tokens, config.future_work_weight);
  }
  throw std::invalid_argument("unknown schedule policy '" + name + "'");
}

namespace {

// Priority bands, far apart so that one band never mixes with the next:
// times are seconds on the forecast clock, well below 1e12.
constexpr double kBand = 1e15;

}  // namespace

double PythiaEviction::priority(const RadixNode& node) const {
  const double now = forecast_.now();
  const WorkflowTags& t = node.tags;
  const JobForecast* job = t.job >= 0 ? forecast_.job(t.job) : nullptr;
  // Dead context (an ended or forgotten job, or one idle past its dead time) goes first.
  if (t.job == WorkflowTags::kEndedJob || (job != nullptr && forecast_.is_dead(*job))) {
    return -2.0 * kBand + node.last_access_time;
  }
  double next_use = 2.0 * now - node.last_access_time;
  if (job != nullptr) {
    next_use = forecast_.next_use(*job);
  } else if (t.job < 0 && t.type >= 0) {
    if (const AgentForecast* agent = forecast_.agent(t.type, t.agent)) next_use = agent->next_use;
  }
  // Never used again: evicted before anything with a finite prediction.
  if (next_use == JobForecast::kNever) return -kBand + node.last_access_time;
  return -next_use;
}

bool PythiaEviction::expects_reuse(const RadixNode& node) const { return priority(node) > -kBand / 2; }

double KvflowEviction::priority(const RadixNode& node) const {
  const WorkflowTags& t = node.tags;
  int32_t steps = 1;
  if (t.job == WorkflowTags::kEndedJob) {
    steps = JobForecast::kNoSteps;
  } else if (t.job >= 0) {
    if (const JobForecast* job = forecast_.job(t.job)) {
      steps = job->ended ? JobForecast::kNoSteps : job->steps_to_execution;
    }
  } else if (t.type >= 0) {
    if (const AgentForecast* agent = forecast_.agent(t.type, t.agent)) steps = agent->steps_to_execution;
  }
  const double step_rank = steps == JobForecast::kNoSteps ? 1e3 : std::min(static_cast<double>(steps), 999.0);
  return -step_rank * kBand / 1e3 + node.last_access_time;
}

double TtlEviction::priority(const RadixNode& node) const {
  if (node.tags.job >= 0) {
    const JobForecast* job = forecast_.job(node.tags.job);
    if (job != nullptr && !job->ended && forecast_.now() < job->pinned_until) {
      return kBand + node.last_access_time;
    }
  }
  return node.last_access_time;
}

std::vector<std::string> eviction_policy_names() { return {"lru", "pythia", "kvflow", "ttl"}; }

std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string& name,
                                                     const WorkflowForecast& forecast) {
  if (name == "lru") return std::make_unique<LruEviction>();
  if (name == "pythia") return std::make_unique<PythiaEviction>(forecast);
  if (name == "kvflow") return std::make_unique<KvflowEviction>(forecast);
  if (name == "ttl") return std::make_unique<TtlEviction>(forecast);
  throw std::invalid_argument("unknown eviction policy '" + name + "'");
}

}  // namespace pythia
