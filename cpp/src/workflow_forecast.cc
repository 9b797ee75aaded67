#include "pythia/workflow_forecast.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pythia {

namespace {
// A job is never predicted less likely to come back than this when dividing
// by that probability: past it, the prediction is "far", not "infinitely far".
constexpr double kMinReturnProbability = 0.05;
}  // namespace

void WorkflowForecast::set_job(int32_t job, const JobForecast& forecast) {
  if (job < 0) throw std::invalid_argument("set_job_forecast: job ids are >= 0");
  if (!(forecast.p_continue >= 0.0 && forecast.p_continue <= 1.0)) {
    throw std::invalid_argument("set_job_forecast: p_continue must be in [0, 1]");
  }
  if (forecast.context_tokens < 0) {
    throw std::invalid_argument("set_job_forecast: context_tokens must be >= 0");
  }
  jobs_[job] = forecast;
}

void WorkflowForecast::set_gap_distribution(int32_t type, int32_t agent, std::vector<double> points) {
  if (points.empty()) {
    gaps_.erase(key(type, agent));
    return;
  }
  for (double p : points) {
    if (!std::isfinite(p) || p < 0.0) throw std::invalid_argument("gap samples must be finite and >= 0");
  }
  std::sort(points.begin(), points.end());
  GapDistribution& d = gaps_[key(type, agent)];
  d.suffix_sum.assign(points.size(), 0.0);
  double sum = 0.0;
  for (size_t i = points.size(); i-- > 0;) d.suffix_sum[i] = sum += points[i];
  d.points = std::move(points);
}

double WorkflowForecast::next_use(const JobForecast& f) const {
  if (f.idle_since == JobForecast::kNever) return f.next_use;
  auto it = gaps_.find(key(f.gap_type, f.gap_agent));
  if (it == gaps_.end()) return f.next_use;
  const GapDistribution& d = it->second;
  const double waited = std::max(0.0, now_ - f.idle_since);
  const auto first_above = std::upper_bound(d.points.begin(), d.points.end(), waited);
  const size_t i = static_cast<size_t>(first_above - d.points.begin());
  const size_t above = d.points.size() - i;
  if (above == 0 || f.p_continue <= 0.0) return JobForecast::kNever;
  const double rest = d.suffix_sum[i] / static_cast<double>(above) - waited;
  const double survival = static_cast<double>(above) / static_cast<double>(d.points.size());
  const double p = std::min(f.p_continue, 1.0) * survival;
  const double p_return = p / (p + 1.0 - std::min(f.p_continue, 1.0));
  return now_ + rest / std::max(p_return, kMinReturnProbability);
}

int64_t WorkflowForecast::live_context_tokens(const std::unordered_set<int32_t>& excluded) const {
  int64_t total = 0;
  for (const auto& kv : jobs_) {
    const JobForecast& f = kv.second;
    if (is_dead(f) || excluded.count(kv.first)) continue;
    // In a call (next use now), or expected back: by the gap distribution given the wait, or
    // by a fixed prediction (a clairvoyant feed's true next call, or the profiler's before it
    // has gap samples).
    if (next_use(f) != JobForecast::kNever) total += f.context_tokens;
  }
  return total;
}

}  // namespace pythia
