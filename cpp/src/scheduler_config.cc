#include "pythia/scheduler_config.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "pythia/eviction_policy.h"
#include "pythia/kv_cache_manager.h"
#include "pythia/schedule_policy.h"

namespace pythia {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

void require_known(const std::string& field, const std::string& name,
                   const std::vector<std::string>& names) {
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument(field + ": unknown policy '" + name + "' (known: " + known + ")");
}

}  // namespace

std::vector<std::string> admission_policy_names() { return {"ratio", "pythia"}; }
std::vector<std::string> host_policy_names() { return {"lru", "pythia"}; }

void SchedulerConfig::validate() const {
  require(page_size > 0, "page_size must be positive");
  require(num_device_pages > 0, "num_device_pages must be positive");
  require(num_host_pages >= 0, "num_host_pages must be >= 0");
  require(max_running_requests > 0, "max_running_requests must be positive");
  require(max_batch_tokens > 0, "max_batch_tokens must be positive");
  require(max_job_hold_s >= 0, "max_job_hold_s must be >= 0");
  require(lpm_fallback_queue_len >= 0, "lpm_fallback_queue_len must be >= 0");
  require(min_new_token_ratio >= 0 && min_new_token_ratio <= init_new_token_ratio,
          "min_new_token_ratio must be in [0, init_new_token_ratio]");
  require(new_token_ratio_decay >= 0, "new_token_ratio_decay must be >= 0");
  require(reserve_clip_tokens >= 0, "reserve_clip_tokens must be >= 0");
  require(aging_tokens_per_step >= 0, "aging_tokens_per_step must be >= 0");
  require(unblock_bonus_tokens >= 0, "unblock_bonus_tokens must be >= 0");
  require(future_work_weight >= 0, "future_work_weight must be >= 0");
  require(long_context_tokens > 0, "long_context_tokens must be positive");
  require(host_prefetch_s >= 0, "host_prefetch_s must be >= 0");
  require(max_long_prefill_tokens >= 0, "max_long_prefill_tokens must be >= 0");
  require_known("schedule_policy", schedule_policy, schedule_policy_names());
  require_known("eviction_policy", eviction_policy, eviction_policy_names());
  require_known("admission_policy", admission_policy, admission_policy_names());
  require_known("host_write_policy", host_write_policy, host_write_policy_names());
  require_known("host_policy", host_policy, host_policy_names());
}

}  // namespace pythia
