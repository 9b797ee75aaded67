// Conversions between numpy/Python values and the core's plain C++ types.
// The module file (module.cc) holds only .def lines; everything that touches
// Python objects beyond that lives here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "pythia/radix_tree.h"
#include "pythia/scheduler.h"

namespace pythia::python {

namespace py = pybind11;
using Int32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using BoolArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

void scheduler_add_request(Scheduler& self, int64_t id, const Int32Array& prompt,
                           int32_t max_new_tokens, double arrival_time, int32_t workflow_type,
                           int32_t job, int32_t agent, int32_t max_cached_tokens,
                           int32_t predicted_output_tokens, bool opens_job);
/// Job and agent predictions for the eviction policies; steps < 0 means "never".
void scheduler_set_job_forecast(Scheduler& self, int32_t job, double next_use, double dead_after,
                                int32_t steps_to_execution, double pinned_until, double idle_since,
                                int32_t gap_type, int32_t gap_agent, double p_continue,
                                int32_t context_tokens);
void scheduler_set_agent_forecast(Scheduler& self, int32_t workflow_type, int32_t agent,
                                  double next_use, int32_t steps_to_execution);
py::dict scheduler_schedule(Scheduler& self);
Int64Array scheduler_update(Scheduler& self, const Int64Array& req_ids, const Int32Array& tokens,
                            const BoolArray& finished);
Int32Array scheduler_tokens(const Scheduler& self, int64_t id);
py::dict scheduler_stats(const Scheduler& self);

/// A radix tree over page ids the caller manages (tests and benchmarks).
class PrefixTree {
 public:
  explicit PrefixTree(int32_t page_size) : tree_(page_size, lru_) {}
  // Sequences are taken as py::object and read in place when they already are
  // int32 arrays (python_methods.cc, int32_array): cheaper than Int32Array's caster.
  Int32Array match_prefix(const py::object& tokens);
  int32_t peek_prefix_pages(const py::object& tokens) const;
  int32_t insert(const py::object& tokens, const py::object& pages);
  Int32Array evict(int32_t num_pages);
  /// For each sequence i (tokens[offsets[i]:offsets[i+1]], its pages from
  /// `pages` in order): match, insert, then evict down to `capacity_pages`
  /// when non-negative. One call for many requests, as the scheduler drives
  /// the tree from C++; returns each sequence's matched pages.
  Int32Array match_insert_many(const Int32Array& tokens, const Int64Array& offsets,
                               const Int32Array& pages, int32_t capacity_pages);
  int32_t evictable_pages() const { return tree_.evictable_pages(); }
  int32_t num_nodes() const { return tree_.num_nodes(); }
  void check_integrity() const { tree_.check_integrity({}); }

 private:
  LruEviction lru_;  // before tree_, which keeps a reference
  RadixTree tree_;
};

}  // namespace pythia::python
