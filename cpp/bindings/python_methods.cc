#include "python_methods.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace pythia::python {
namespace {

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& values) {
  py::array_t<T> out(static_cast<py::ssize_t>(values.size()));
  if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(T));
  return out;
}

/// Hands a vector's buffer to numpy without copying it.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), free_when_done);
}

void require_1d(const py::array& a, const char* name) {
  if (a.ndim() != 1) {
    throw std::invalid_argument(std::string(name) + " must be a 1-D array, got " +
                                std::to_string(a.ndim()) + " dimensions");
  }
}

}  // namespace

void scheduler_add_request(Scheduler& self, int64_t id, const Int32Array& prompt,
                           int32_t max_new_tokens, double arrival_time, const WorkflowTags& tags,
                           const RequestHints& hints) {
  require_1d(prompt, "prompt");
  std::vector<int32_t> tokens(prompt.data(), prompt.data() + prompt.size());
  py::gil_scoped_release release;
  self.add_request(id, std::move(tokens), max_new_tokens, arrival_time, tags, hints);
}

std::shared_ptr<StepPlan> scheduler_schedule(Scheduler& self) {
  {
    py::gil_scoped_release release;
    self.schedule();
  }
  // Python only reads it (every property is a read-only view); the scheduler
  // writes a fresh plan next step while this one is still referenced.
  return std::const_pointer_cast<StepPlan>(self.last_plan());
}

Int64Array scheduler_update(Scheduler& self, const Int64Array& req_ids, const Int32Array& tokens,
                            const BoolArray& finished, const std::optional<UInt64Array>& transfers_done) {
  require_1d(req_ids, "req_ids");
  require_1d(tokens, "tokens");
  require_1d(finished, "finished");
  if (tokens.size() != req_ids.size() || finished.size() != req_ids.size()) {
    throw std::invalid_argument("update: req_ids, tokens and finished must have equal lengths");
  }
  std::vector<uint64_t> steps;
  if (transfers_done) {
    require_1d(*transfers_done, "transfers_done");
    steps.assign(transfers_done->data(), transfers_done->data() + transfers_done->size());
  }
  std::vector<int64_t> done;
  {
    py::gil_scoped_release release;
    done = self.update(req_ids.data(), tokens.data(), finished.data(),
                       static_cast<size_t>(req_ids.size()), steps);
  }
  return to_numpy(std::move(done));
}

Int32Array scheduler_tokens(const Scheduler& self, int64_t id) { return to_numpy(self.tokens(id)); }

std::string workflow_tags_repr(const WorkflowTags& tags) {
  return "WorkflowTags(type=" + std::to_string(tags.type) + ", job=" + std::to_string(tags.job) +
         ", agent=" + std::to_string(tags.agent) + ")";
}

py::array step_plan_samples(py::object plan) {
  return step_plan_view(plan, plan.cast<const StepPlan&>().samples, py::dtype("bool"));
}

Int32Array PrefixTree::match_prefix(const Int32Array& tokens) {
  require_1d(tokens, "tokens");
  MatchResult match;
  {
    py::gil_scoped_release release;
    match = tree_.match_prefix(tokens.data(), static_cast<size_t>(tokens.size()));
  }
  return to_numpy(std::move(match.device_pages));
}

int32_t PrefixTree::peek_prefix_pages(const Int32Array& tokens) const {
  require_1d(tokens, "tokens");
  return tree_.peek_prefix_pages(tokens.data(), static_cast<size_t>(tokens.size()));
}

int32_t PrefixTree::insert(const Int32Array& tokens, const Int32Array& pages) {
  require_1d(tokens, "tokens");
  require_1d(pages, "pages");
  const py::ssize_t num_pages = pages.size();
  if (num_pages * tree_.page_size() > tokens.size()) {
    throw std::invalid_argument("insert: " + std::to_string(num_pages) + " pages need " +
                                std::to_string(num_pages * tree_.page_size()) + " tokens, got " +
                                std::to_string(tokens.size()));
  }
  py::gil_scoped_release release;
  return tree_.insert(tokens.data(), static_cast<int32_t>(num_pages), pages.data(), WorkflowTags{})
      .num_present;
}

Int32Array PrefixTree::evict(int32_t num_pages) {
  std::vector<int32_t> out;
  tree_.evict(num_pages, out);
  return to_numpy(std::move(out));
}

Int32Array PrefixTree::match_insert_many(const Int32Array& tokens, const Int64Array& offsets,
                                         const Int32Array& pages, int32_t capacity_pages) {
  require_1d(tokens, "tokens");
  require_1d(offsets, "offsets");
  require_1d(pages, "pages");
  const int64_t* off = offsets.data();
  const py::ssize_t n = offsets.size() - 1;
  const int64_t ps = tree_.page_size();
  int64_t total_pages = 0;
  for (py::ssize_t i = 0; i < n; ++i) {
    if (off[i] < 0 || off[i] > off[i + 1] || off[i + 1] > tokens.size()) {
      throw std::invalid_argument("match_insert_many: offsets must rise within the tokens");
    }
    total_pages += (off[i + 1] - off[i]) / ps;
  }
  if (n < 0 || total_pages != pages.size()) {
    throw std::invalid_argument("match_insert_many: need one page per whole page of every sequence (" +
                                std::to_string(total_pages) + "), got " + std::to_string(pages.size()));
  }
  std::vector<int32_t> matched(static_cast<size_t>(std::max<py::ssize_t>(n, 0)));
  {
    py::gil_scoped_release release;
    std::vector<int32_t> evicted;
    const int32_t* page = pages.data();
    for (py::ssize_t i = 0; i < n; ++i) {
      const int32_t* seq = tokens.data() + off[i];
      const int64_t len = off[i + 1] - off[i];
      matched[i] = static_cast<int32_t>(tree_.match_prefix(seq, static_cast<size_t>(len)).device_pages.size());
      const int32_t num_pages = static_cast<int32_t>(len / ps);
      tree_.insert(seq, num_pages, page, WorkflowTags{});
      page += num_pages;
      if (capacity_pages >= 0 && tree_.evictable_pages() > capacity_pages) {
        evicted.clear();
        tree_.evict(tree_.evictable_pages() - capacity_pages, evicted);
      }
    }
  }
  return to_numpy(std::move(matched));
}

}  // namespace pythia::python
