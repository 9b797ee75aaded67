// The interface every prefix-cache eviction policy implements.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pythia/radix_node.h"

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

/// \brief Names accepted by make_eviction_policy.
std::vector<std::string> eviction_policy_names();

/// \brief Builds a policy by name; throws std::invalid_argument listing the
/// known names for an unknown one.
std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string& name);

}  // namespace pythia
