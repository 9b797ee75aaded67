// The interface every prefix-cache eviction policy implements.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pythia/radix_node.h"
#include "pythia/workflow_forecast.h"

namespace pythia {

/// \brief Orders evictable radix nodes: the node with the lowest priority
/// loses its device pages first. Ties go to the older node (lower id).
class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual const char* name() const = 0;
  virtual double priority(const RadixNode& node) const = 0;
  /// \brief True when a node's priority changes only when the node is used
  /// (matched or inserted through) or when the policy says so through
  /// RadixTree::reprioritize(). The tree then keeps evictable nodes in
  /// priority order and evicts in O(log n) per node; otherwise every
  /// eviction re-ranks all candidates.
  virtual bool static_priority() const { return false; }
  /// \brief The predictions this policy reads (none for LRU).
  virtual ForecastNeeds reads() const { return {}; }
  /// \brief False when the node is predicted never to be used again (the
  /// host tier's `pythia` policy then drops it instead of copying it to host).
  virtual bool expects_reuse(const RadixNode&) const { return true; }
};

/// \brief Least recently used: evicts the node matched or inserted longest ago.
class LruEviction final : public EvictionPolicy {
 public:
  const char* name() const override { return "lru"; }
  double priority(const RadixNode& node) const override {
    return static_cast<double>(node.last_access);
  }
  bool static_priority() const override { return true; }
};

/// \brief Base of the policies that rank by the profiler's predictions.
class ForecastEviction : public EvictionPolicy {
 public:
  ForecastNeeds reads() const override {
    ForecastNeeds needs;
    needs.job_forecasts = needs.agent_forecasts = true;
    return needs;
  }

 protected:
  explicit ForecastEviction(const WorkflowForecast& forecast) : forecast_(forecast) {}
  const WorkflowForecast& forecast_;
};

/// \brief Pythia (Belady-like): evicts the node whose predicted next use is
/// farthest away. Dead jobs' private contexts go first (ended, or idle past
/// their P99 gap), oldest first; then nodes by predicted next use of their
/// job, or of their agent for a shared prefix such as a system prompt. A node
/// nothing is predicted for is expected back after as long as it has been
/// idle (2 * now - last use), so that without any metadata the order is LRU.
class PythiaEviction final : public ForecastEviction {
 public:
  explicit PythiaEviction(const WorkflowForecast& forecast) : ForecastEviction(forecast) {}
  const char* name() const override { return "pythia"; }
  double priority(const RadixNode& node) const override;
  /// Dead context, or no call predicted ever again.
  bool expects_reuse(const RadixNode& node) const override;
};

/// \brief KVFlow: steps-to-execution from the agent step graph. A node whose
/// agent (or job) runs fewer agent steps from now is kept; among equal steps,
/// LRU. Ended jobs and agents no live job can reach count as never running.
/// Nodes nothing is known about count as one step away.
class KvflowEviction final : public ForecastEviction {
 public:
  explicit KvflowEviction(const WorkflowForecast& forecast) : ForecastEviction(forecast) {}
  const char* name() const override { return "kvflow"; }
  double priority(const RadixNode& node) const override;
};

/// \brief Continuum: when a job's call ends in a tool call, its pages are
/// pinned for a TTL chosen from the tool-gap distribution; pinned nodes are
/// evicted only when nothing unpinned is left. Otherwise LRU.
class TtlEviction final : public ForecastEviction {
 public:
  explicit TtlEviction(const WorkflowForecast& forecast) : ForecastEviction(forecast) {}
  const char* name() const override { return "ttl"; }
  double priority(const RadixNode& node) const override;
};

/// \brief Names accepted by make_eviction_policy.
std::vector<std::string> eviction_policy_names();

/// \brief Builds a policy by name; throws std::invalid_argument for an
/// unknown one (SchedulerConfig::validate names the known ones). Prediction-driven policies read
/// `forecast`, which must outlive them.
std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string& name,
                                                     const WorkflowForecast& forecast);

}  // namespace pythia
