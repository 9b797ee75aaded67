// pybind11 module `pythia._core`: .def lines only; conversions live in
// python_methods.cc.
#include <pybind11/stl.h>

#include "python_methods.h"
#include "pythia/eviction_policy.h"
#include "pythia/schedule_policy.h"

namespace py = pybind11;
using namespace pythia;
using namespace pythia::python;

PYBIND11_MODULE(_core, m) {
  m.doc() = "Pythia's C++ scheduler core: page pools, radix prefix tree, scheduler, policies.";

  m.def("schedule_policy_names", &schedule_policy_names, "Names accepted as schedule_policy.");
  m.def("eviction_policy_names", &eviction_policy_names, "Names accepted as eviction_policy.");
  m.def("admission_policy_names", &admission_policy_names, "Names accepted as admission_policy.");

  py::class_<SchedulerConfig>(m, "SchedulerConfig", "Settings of one Scheduler; see scheduler_config.h.")
      .def(py::init<>())
      .def_readwrite("page_size", &SchedulerConfig::page_size, "Tokens per KV page.")
      .def_readwrite("num_device_pages", &SchedulerConfig::num_device_pages, "Pages in the device KV pool.")
      .def_readwrite("num_host_pages", &SchedulerConfig::num_host_pages, "Pages in the host KV pool.")
      .def_readwrite("max_running_requests", &SchedulerConfig::max_running_requests, "Most requests running at once.")
      .def_readwrite("max_batch_tokens", &SchedulerConfig::max_batch_tokens, "Tokens computed per step (chunked-prefill budget).")
      .def_readwrite("schedule_policy", &SchedulerConfig::schedule_policy, "Request order policy name.")
      .def_readwrite("eviction_policy", &SchedulerConfig::eviction_policy, "Prefix-cache eviction policy name.")
      .def_readwrite("admission_policy", &SchedulerConfig::admission_policy, "Output KV reservation policy name.")
      .def_readwrite("unblock_bonus_tokens", &SchedulerConfig::unblock_bonus_tokens, "pythia policy: work forgiven when a request unblocks its job's next agent.")
      .def_readwrite("future_work_weight", &SchedulerConfig::future_work_weight, "pythia policy: weight of a job's predicted later work against the current call's own cost.")
      .def_readwrite("max_job_hold_s", &SchedulerConfig::max_job_hold_s, "pythia admission: longest a job's first call waits for room beside live jobs' contexts.")
      .def_readwrite("lpm_fallback_queue_len", &SchedulerConfig::lpm_fallback_queue_len, "Queue length beyond which lpm acts as fcfs.")
      .def_readwrite("aging_tokens_per_step", &SchedulerConfig::aging_tokens_per_step, "pythia policy: work forgiven per step waited.")
      .def_readwrite("init_new_token_ratio", &SchedulerConfig::init_new_token_ratio, "Initial output reservation ratio.")
      .def_readwrite("min_new_token_ratio", &SchedulerConfig::min_new_token_ratio, "Lowest output reservation ratio.")
      .def_readwrite("new_token_ratio_decay", &SchedulerConfig::new_token_ratio_decay, "Per-step decay of the ratio.")
      .def_readwrite("reserve_clip_tokens", &SchedulerConfig::reserve_clip_tokens, "Clip on remaining output counted in the reservation.");

  py::class_<Scheduler>(m, "Scheduler", "Request table, queues and per-step decisions of one replica.")
      .def(py::init<const SchedulerConfig&>(), py::arg("config"))
      .def("add_request", &scheduler_add_request, py::arg("req_id"), py::arg("prompt"),
           py::arg("max_new_tokens"), py::arg("arrival_time") = 0.0, py::arg("workflow_type") = -1,
           py::arg("job") = -1, py::arg("agent") = -1, py::arg("max_cached_tokens") = -1,
           py::arg("predicted_output_tokens") = -1, py::arg("opens_job") = false,
           "Queue a request (opens_job: a workflow job's first call); ValueError for a duplicate id, empty prompt, negative max_new_tokens or one that can never fit.")
      .def("schedule", &scheduler_schedule,
           "Decide the next step; returns a dict of flat numpy arrays (see step_plan.h).")
      .def("update", &scheduler_update, py::arg("req_ids"), py::arg("tokens"), py::arg("finished"),
           "Report the step's sampled tokens and finish flags; returns the ids finished this step.")
      .def("set_job_work", &Scheduler::set_job_work, py::arg("job"), py::arg("tokens"), py::arg("unblocks") = false,
           "Predicted remaining work (tokens) of a job and whether its calls in flight unblock its next agent, for the pythia policy; negative clears it.")
      .def("set_time", &Scheduler::set_time, py::arg("now"),
           "Advance the clock (seconds) predictions and cache access times are measured on.")
      .def("set_job_forecast", &scheduler_set_job_forecast, py::arg("job"), py::arg("next_use"),
           py::arg("dead_after"), py::arg("steps_to_execution"), py::arg("pinned_until"),
           py::arg("idle_since") = JobForecast::kNever, py::arg("gap_type") = -1, py::arg("gap_agent") = -1,
           py::arg("p_continue") = 1.0, py::arg("context_tokens") = 0,
           "Predictions about a job's private context for the eviction policies (times on the set_time clock; "
           "steps < 0: never). A job waiting between calls since `idle_since` is predicted from the gap "
           "distribution of (gap_type, gap_agent) given the wait so far, when one was set.")
      .def("set_gap_distribution",
           [](Scheduler& self, int32_t workflow_type, int32_t agent, std::vector<double> points) {
             self.forecast().set_gap_distribution(workflow_type, agent, std::move(points));
           },
           py::arg("workflow_type"), py::arg("agent"), py::arg("points"),
           "Equally likely samples of the gap after an agent's call until the job's next call (empty: clear).")
      .def("end_job", [](Scheduler& self, int32_t job) { self.forecast().end_job(job); }, py::arg("job"),
           "The job's private context is dead: its pages are evicted first.")
      .def("forget_job", &Scheduler::forget_job, py::arg("job"),
           "Forget an ended job with no live request: its cached pages become dead context and every "
           "per-job record is dropped, so the id may be reused. RuntimeError while a request of it is live.")
      .def("set_agent_forecast", &scheduler_set_agent_forecast, py::arg("workflow_type"), py::arg("agent"),
           py::arg("next_use"), py::arg("steps_to_execution"),
           "Predicted next use of the prefix an agent's jobs share (agent -1: all agents of the type).")
      .def("abort", &Scheduler::abort, py::arg("req_id"), "Drop a request, freeing its pages; False if unknown.")
      .def("flush_cache", &Scheduler::flush_cache, py::call_guard<py::gil_scoped_release>(),
           "Evict every unlocked cached page; returns how many.")
      .def("tokens", &scheduler_tokens, py::arg("req_id"), "Prompt plus output so far of a live request.")
      .def("has_request", &Scheduler::has_request, py::arg("req_id"), "Whether the request is live.")
      .def("stats", &scheduler_stats, "Queue lengths, page counts and counters.")
      .def("check_integrity", &Scheduler::check_integrity, py::call_guard<py::gil_scoped_release>(),
           "Raise RuntimeError naming the first violated invariant (pages, locks, queues).");

  py::class_<PrefixTree>(m, "PrefixTree", "Standalone radix tree over caller-managed page ids, LRU eviction.")
      .def(py::init<int32_t>(), py::arg("page_size"))
      .def("match_prefix", &PrefixTree::match_prefix, py::arg("tokens"), "Pages of the longest cached prefix.")
      .def("peek_prefix_pages", &PrefixTree::peek_prefix_pages, py::arg("tokens"), "Matched pages, without side effects.")
      .def("insert", &PrefixTree::insert, py::arg("tokens"), py::arg("pages"),
           "Cache len(pages) whole pages; returns how many leading pages were already cached.")
      .def("evict", &PrefixTree::evict, py::arg("num_pages"), "Evict at least num_pages (LRU); returns their ids.")
      .def("match_insert_many", &PrefixTree::match_insert_many, py::arg("tokens"), py::arg("offsets"),
           py::arg("pages"), py::arg("capacity_pages") = -1,
           "Match then insert each sequence (evicting down to capacity_pages if >= 0) in one call; returns matched pages per sequence.")
      .def_property_readonly("evictable_pages", &PrefixTree::evictable_pages, "Unlocked cached pages.")
      .def_property_readonly("num_nodes", &PrefixTree::num_nodes, "Nodes in the tree.")
      .def("check_integrity", &PrefixTree::check_integrity, "Raise RuntimeError on a violated invariant.");
}
