// Conversions between numpy/Python values and the core's plain C++ types.
// The module file (module.cc) holds only .def lines; everything that touches
// Python objects beyond that lives here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pythia/kv_copy.h"
#include "pythia/radix_tree.h"
#include "pythia/scheduler.h"

namespace pythia::python {

namespace py = pybind11;
using Int32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using BoolArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

using UInt64Array = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;

void scheduler_add_request(Scheduler& self, int64_t id, const Int32Array& prompt,
                           int32_t max_new_tokens, double arrival_time, const WorkflowTags& tags,
                           const RequestHints& hints);
/// The plan schedule() just made, shared with the scheduler: its arrays are
/// read-only numpy views of the plan's buffers (see step_plan_property).
std::shared_ptr<StepPlan> scheduler_schedule(Scheduler& self);
Int64Array scheduler_update(Scheduler& self, const Int64Array& req_ids, const Int32Array& tokens,
                            const BoolArray& finished, const std::optional<UInt64Array>& transfers_done);
Int32Array scheduler_tokens(const Scheduler& self, int64_t id);
std::string workflow_tags_repr(const WorkflowTags& tags);

/// Step counts cross to Python with -1 for "never"; the core uses kNoSteps.
template <typename Forecast>
int32_t steps_to_python(const Forecast& f) {
  return f.steps_to_execution == JobForecast::kNoSteps ? -1 : f.steps_to_execution;
}
template <typename Forecast>
void steps_from_python(Forecast& f, int32_t steps) {
  f.steps_to_execution = steps < 0 ? JobForecast::kNoSteps : steps;
}

/// A read-only numpy view of one of the plan's vectors; `plan` (the Python
/// object holding the shared StepPlan) is the view's base, so the buffer
/// lives as long as any view of it. `pairs` shapes it as (n, 2).
template <typename T>
py::array step_plan_view(py::handle plan, const std::vector<T>& values, const py::dtype& dtype,
                         bool pairs = false) {
  const auto n = static_cast<py::ssize_t>(values.size());
  const auto item = static_cast<py::ssize_t>(sizeof(T));
  py::array out = pairs ? py::array(dtype, {n / 2, py::ssize_t{2}}, {2 * item, item}, values.data(), plan)
                        : py::array(dtype, {n}, {item}, values.data(), plan);
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

/// StepPlan::samples (0/1 bytes) viewed as numpy bools.
py::array step_plan_samples(py::object plan);

/// A step_plan_view property getter for field `member` of StepPlan.
template <typename T>
auto step_plan_property(std::vector<T> StepPlan::*member, bool pairs = false) {
  return [member, pairs](py::object self) {
    const StepPlan& plan = self.cast<const StepPlan&>();
    return step_plan_view(self, plan.*member, py::dtype::of<T>(), pairs);
  };
}

/// copy_kv_pages over raw addresses (torch's data_ptr()): device_buffers are
/// the 2 * num_layers layer-first buffers, host the page-first buffer. The GIL
/// is released while bytes move.
void kv_copy_pages(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages, uint64_t host,
                   int64_t num_host_pages, int64_t page_bytes, const Int32Array& pairs, bool to_host);

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
