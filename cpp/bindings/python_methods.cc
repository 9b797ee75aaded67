#include "python_methods.h"

#include <algorithm>
#include <cstring>
#include <optional>
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

/// `obj` as a 1-D int32 array: `obj` itself when it already is a C-contiguous
/// int32 numpy array, else a converted copy (lists, other dtypes), as
/// Int32Array's forcecast would make. (Int32Array as a parameter type always
/// goes through PyArray_FromAny, which costs more than a match on a warm tree.)
Int32Array int32_array(const py::object& obj, const char* name) {
  Int32Array arr = Int32Array::check_(obj) ? py::reinterpret_borrow<Int32Array>(obj) : Int32Array::ensure(obj);
  if (!arr) throw py::type_error(std::string(name) + " must be convertible to an int32 array");
  require_1d(arr, name);
  return arr;
}

/// Page ids as a new array, made as an Int32Array from the start: to_numpy's
/// py::array_t<int32_t> would be converted to Int32Array, through
/// PyArray_FromAny, on the way out.
Int32Array pages_to_numpy(const std::vector<int32_t>& pages) {
  Int32Array out(static_cast<py::ssize_t>(pages.size()));
  if (!pages.empty()) std::memcpy(out.mutable_data(), pages.data(), pages.size() * sizeof(int32_t));
  return out;
}

/// Releases the GIL for the tree's work only when `num_tokens` makes it long:
/// a match or insert takes microseconds, less than handing the GIL to another
/// thread and taking it back (which can also wait out that thread's turn).
class ReleaseGilIfLong {
 public:
  explicit ReleaseGilIfLong(py::ssize_t num_tokens) {
    if (num_tokens >= kLongTokens) release_.emplace();
  }

 private:
  static constexpr py::ssize_t kLongTokens = 1 << 16;
  std::optional<py::gil_scoped_release> release_;
};

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

Int32Array PrefixTree::match_prefix(const py::object& tokens_obj) {
  const Int32Array tokens = int32_array(tokens_obj, "tokens");
  MatchResult match;
  {
    ReleaseGilIfLong release(tokens.size());
    match = tree_.match_prefix(tokens.data(), static_cast<size_t>(tokens.size()));
  }
  return pages_to_numpy(match.device_pages);
}

int32_t PrefixTree::peek_prefix_pages(const py::object& tokens_obj) const {
  const Int32Array tokens = int32_array(tokens_obj, "tokens");
  return tree_.peek_prefix_pages(tokens.data(), static_cast<size_t>(tokens.size()));
}

int32_t PrefixTree::insert(const py::object& tokens_obj, const py::object& pages_obj) {
  const Int32Array tokens = int32_array(tokens_obj, "tokens");
  const Int32Array pages = int32_array(pages_obj, "pages");
  const py::ssize_t num_pages = pages.size();
  if (num_pages * tree_.page_size() > tokens.size()) {
    throw std::invalid_argument("insert: " + std::to_string(num_pages) + " pages need " +
                                std::to_string(num_pages * tree_.page_size()) + " tokens, got " +
                                std::to_string(tokens.size()));
  }
  ReleaseGilIfLong release(tokens.size());
  return tree_.insert(tokens.data(), static_cast<int32_t>(num_pages), pages.data(), WorkflowTags{})
      .num_present;
}

Int32Array PrefixTree::evict(int32_t num_pages) {
  std::vector<int32_t> out;
  tree_.evict(num_pages, out);
  return pages_to_numpy(out);
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
  return pages_to_numpy(matched);
}

void kv_copy_pages(const std::vector<uint64_t>& device_buffers, int64_t num_device_pages, uint64_t host,
                   int64_t num_host_pages, int64_t page_bytes, const Int32Array& pairs, bool to_host) {
  const KvPools pools = kv_pools_at(device_buffers, num_device_pages, host, num_host_pages, page_bytes);
  const int32_t* data = pairs.data();
  const int64_t n = static_cast<int64_t>(pairs.size());
  py::gil_scoped_release release;
  copy_kv_pages(pools, data, n, to_host);
}

}  // namespace pythia::python
