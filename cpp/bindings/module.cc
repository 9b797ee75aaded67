// pybind11 module `pythia._core`: .def lines only; conversions live in
// python_methods.cc.
#include <pybind11/stl.h>

#include "python_methods.h"
#include "pythia/eviction_policy.h"
#include "pythia/kv_cache_manager.h"
#include "pythia/schedule_policy.h"

namespace py = pybind11;
using namespace pythia;
using namespace pythia::python;

PYBIND11_MODULE(_core, m) {
  m.doc() = "Pythia's C++ scheduler core: page pools, radix prefix tree, scheduler, policies.";

  m.def("schedule_policy_names", &schedule_policy_names, "Names accepted as schedule_policy.");
  m.def("eviction_policy_names", &eviction_policy_names, "Names accepted as eviction_policy.");
  m.def("admission_policy_names", &admission_policy_names, "Names accepted as admission_policy.");
  m.def("host_write_policy_names", &host_write_policy_names, "Names accepted as host_write_policy.");
  m.def("host_policy_names", &host_policy_names, "Names accepted as host_policy.");
  m.attr("STEP_FAILED") = kStepFailed;
  m.def("copy_kv_pages", &kv_copy_pages, py::arg("device_buffers"), py::arg("num_device_pages"), py::arg("host"),
        py::arg("num_host_pages"), py::arg("page_bytes"), py::arg("pairs"), py::arg("to_host"),
        "Copy KV pages between layer-first device buffers and a page-first host buffer, on the CPU, by raw "
        "address (kv_layout.h). pairs: flattened (source, destination) page ids; ValueError for a bad argument.");

  py::class_<SchedulerConfig>(m, "SchedulerConfig", "Settings of one Scheduler; see scheduler_config.h.")
      .def(py::init<>())
      .def_readwrite("page_size", &SchedulerConfig::page_size, "Tokens per KV page.")
      .def_readwrite("num_device_pages", &SchedulerConfig::num_device_pages, "Pages in the device KV pool.")
      .def_readwrite("num_host_pages", &SchedulerConfig::num_host_pages, "Pages in the host KV pool (0: no host tier).")
      .def_readwrite("host_write_policy", &SchedulerConfig::host_write_policy, "When device pages get a host copy (HiCache's write policies).")
      .def_readwrite("host_prefetch_s", &SchedulerConfig::host_prefetch_s, "pythia host policy: prefetch a job's context this long before its predicted call (0: off).")
      .def_readwrite("host_policy", &SchedulerConfig::host_policy, "Host tier: lru (HiCache) or pythia (offload on eviction unless dead, drop farthest next use first).")
      .def_readwrite("max_running_requests", &SchedulerConfig::max_running_requests, "Most requests running at once.")
      .def_readwrite("max_batch_tokens", &SchedulerConfig::max_batch_tokens, "Tokens computed per step (chunked-prefill budget).")
      .def_readwrite("schedule_policy", &SchedulerConfig::schedule_policy, "Request order policy name.")
      .def_readwrite("eviction_policy", &SchedulerConfig::eviction_policy, "Prefix-cache eviction policy name.")
      .def_readwrite("admission_policy", &SchedulerConfig::admission_policy, "Output KV reservation policy name.")
      .def_readwrite("unblock_bonus_tokens", &SchedulerConfig::unblock_bonus_tokens, "pythia policy: work forgiven when a request unblocks its job's next agent.")
      .def_readwrite("future_work_weight", &SchedulerConfig::future_work_weight, "pythia policy: weight of a job's predicted later work against the current call's own cost.")
      .def_readwrite("long_context_tokens", &SchedulerConfig::long_context_tokens, "Long-context isolation: prompt length that makes a request long.")
      .def_readwrite("max_long_prefill_tokens", &SchedulerConfig::max_long_prefill_tokens, "Long-context isolation: long requests' prefill tokens per step (0: no cap).")
      .def_readwrite("max_job_hold_s", &SchedulerConfig::max_job_hold_s, "pythia admission: longest a job's first call waits for room beside live jobs' contexts.")
      .def_readwrite("lpm_fallback_queue_len", &SchedulerConfig::lpm_fallback_queue_len, "Queue length beyond which lpm acts as fcfs.")
      .def_readwrite("aging_tokens_per_step", &SchedulerConfig::aging_tokens_per_step, "pythia policy: work forgiven per step waited.")
      .def_readwrite("init_new_token_ratio", &SchedulerConfig::init_new_token_ratio, "Initial output reservation ratio.")
      .def_readwrite("min_new_token_ratio", &SchedulerConfig::min_new_token_ratio, "Lowest output reservation ratio.")
      .def_readwrite("new_token_ratio_decay", &SchedulerConfig::new_token_ratio_decay, "Per-step decay of the ratio.")
      .def_readwrite("reserve_clip_tokens", &SchedulerConfig::reserve_clip_tokens, "Clip on remaining output counted in the reservation.")
      .def("validate", &SchedulerConfig::validate,
           "Raise ValueError naming the first bad setting (the message starts with the field's name).");

  py::class_<WorkflowTags>(m, "WorkflowTags", "Interned workflow ids of a request; -1: not given (workflow_tags.h).")
      .def(py::init([](int32_t type, int32_t job, int32_t agent) { return WorkflowTags{type, job, agent}; }),
           py::arg("type") = -1, py::arg("job") = -1, py::arg("agent") = -1)
      .def_readwrite("type", &WorkflowTags::type, "Workflow kind.")
      .def_readwrite("job", &WorkflowTags::job, "Running instance (job / session).")
      .def_readwrite("agent", &WorkflowTags::agent, "Role that is calling.")
      .def("__repr__", &workflow_tags_repr);

  py::class_<RequestHints>(m, "RequestHints", "What the caller knows about a request beyond its tokens (request.h).")
      .def(py::init([](int32_t max_cached, int32_t predicted_output, bool opens_job) {
             return RequestHints{max_cached, predicted_output, opens_job};
           }),
           py::arg("max_cached_tokens") = -1, py::arg("predicted_output_tokens") = -1, py::arg("opens_job") = false)
      .def_readwrite("max_cached_tokens", &RequestHints::max_cached_tokens, "Most leading tokens the cache may serve (-1: no limit).")
      .def_readwrite("predicted_output_tokens", &RequestHints::predicted_output_tokens, "P99 predicted output length (-1: none).")
      .def_readwrite("opens_job", &RequestHints::opens_job, "The first call of a workflow job.");

  py::class_<JobForecast>(m, "JobForecast", "Predictions about a job's private context; times on the set_time clock (workflow_forecast.h).")
      .def(py::init<>())
      .def_readwrite("next_use", &JobForecast::next_use, "Predicted time of the job's next call.")
      .def_readwrite("dead_after", &JobForecast::dead_after, "Dead once the clock passes this without a new call.")
      .def_property("steps_to_execution", &steps_to_python<JobForecast>, &steps_from_python<JobForecast>,
                    "Agent steps until the job runs again; -1: never.")
      .def_readwrite("pinned_until", &JobForecast::pinned_until, "Continuum: pages pinned until this time.")
      .def_readwrite("context_tokens", &JobForecast::context_tokens, "Tokens of the job's context.")
      .def_readwrite("idle_since", &JobForecast::idle_since, "Waiting between calls since then (inf: not waiting).")
      .def_readwrite("gap_type", &JobForecast::gap_type, "Workflow type of the gap distribution to condition on (-1: none).")
      .def_readwrite("gap_agent", &JobForecast::gap_agent, "Agent of that gap distribution (-1: none).")
      .def_readwrite("p_continue", &JobForecast::p_continue, "Probability that the job calls again, in [0, 1].");

  py::class_<AgentForecast>(m, "AgentForecast", "Predicted next use of a prefix an agent's jobs share.")
      .def(py::init<>())
      .def_readwrite("next_use", &AgentForecast::next_use, "Predicted time of the next use.")
      .def_property("steps_to_execution", &steps_to_python<AgentForecast>, &steps_from_python<AgentForecast>,
                    "Agent steps until it runs; -1: never.");

  py::class_<ForecastNeeds>(m, "ForecastNeeds", "Which predictions the configured policies read.")
      .def_readonly("job_work", &ForecastNeeds::job_work, "set_job_work (ordering).")
      .def_readonly("job_forecasts", &ForecastNeeds::job_forecasts, "set_job_forecast, end_job, set_gap_distribution.")
      .def_readonly("agent_forecasts", &ForecastNeeds::agent_forecasts, "set_agent_forecast.")
      .def_readonly("output_p99", &ForecastNeeds::output_p99, "RequestHints.predicted_output_tokens.");

  py::class_<SchedulerStats>(m, "SchedulerStats", "Queue lengths, page counts and counters.")
      .def_readonly("num_waiting", &SchedulerStats::num_waiting)
      .def_readonly("num_running", &SchedulerStats::num_running)
      .def_readonly("free_pages", &SchedulerStats::free_pages)
      .def_readonly("evictable_pages", &SchedulerStats::evictable_pages)
      .def_readonly("protected_pages", &SchedulerStats::protected_pages)
      .def_readonly("cached_host_pages", &SchedulerStats::cached_host_pages)
      .def_readonly("num_preemptions", &SchedulerStats::num_preemptions)
      .def_readonly("num_evicted_pages", &SchedulerStats::num_evicted_pages)
      .def_readonly("prompt_tokens", &SchedulerStats::prompt_tokens, "Prompt tokens of admitted requests.")
      .def_readonly("cached_prompt_tokens", &SchedulerStats::cached_prompt_tokens, "Of them, served by the cache.")
      .def_readonly("new_token_ratio", &SchedulerStats::new_token_ratio)
      .def_readonly("free_host_pages", &SchedulerStats::free_host_pages)
      .def_readonly("transfers_in_flight", &SchedulerStats::transfers_in_flight, "Node copies (backups, loads) begun and not completed.")
      .def_property_readonly("host_hit_tokens", [](const SchedulerStats& s) { return s.host.host_hit_tokens; }, "Prompt tokens loaded from host copies.")
      .def_property_readonly("pages_offloaded", [](const SchedulerStats& s) { return s.host.pages_offloaded; }, "Device -> host at eviction.")
      .def_property_readonly("pages_backed_up", [](const SchedulerStats& s) { return s.host.pages_backed_up; }, "Device -> host, write-through.")
      .def_property_readonly("pages_loaded", [](const SchedulerStats& s) { return s.host.pages_loaded; }, "Host -> device.")
      .def_property_readonly("host_evicted_pages", [](const SchedulerStats& s) { return s.host.host_evicted_pages; }, "Host copies dropped for room.")
      .def_property_readonly("dropped_pages", [](const SchedulerStats& s) { return s.host.dropped_pages; }, "Device pages evicted with no host copy.")
      .def_property_readonly("prefetched_pages", [](const SchedulerStats& s) { return s.host.prefetched_pages; }, "Pages loaded ahead of a predicted call.")
      .def_property_readonly("prefetch_on_time", [](const SchedulerStats& s) { return s.host.prefetch_on_time; }, "Prefetched nodes found landed by their job's next call.")
      .def_property_readonly("prefetch_late", [](const SchedulerStats& s) { return s.host.prefetch_late; }, "... found still loading.")
      .def_property_readonly("prefetch_unused", [](const SchedulerStats& s) { return s.host.prefetch_unused; }, "... evicted before any use.");

  py::class_<StepPlan, std::shared_ptr<StepPlan>>(
      m, "StepPlan", "One step's plan; every array is a read-only view of the core's buffer (step_plan.h).")
      .def_readonly("step", &StepPlan::step, "The scheduler's step counter.")
      .def("__len__", &StepPlan::size, "Entries (requests) in the batch.")
      .def_property_readonly("req_ids", step_plan_property(&StepPlan::req_ids), "int64 [n]: decodes first, then prefill chunks.")
      .def_property_readonly("start_pos", step_plan_property(&StepPlan::start_pos), "int32 [n]: first position computed.")
      .def_property_readonly("num_tokens", step_plan_property(&StepPlan::num_tokens), "int32 [n]: positions computed.")
      .def_property_readonly("cached_tokens", step_plan_property(&StepPlan::cached_tokens), "int32 [n]: prefix served by the cache at admission.")
      .def_property_readonly("samples", &step_plan_samples, "bool [n]: the entry samples a token this step.")
      .def_property_readonly("input_ids", step_plan_property(&StepPlan::input_ids), "int32 [sum(num_tokens)]: tokens to run.")
      .def_property_readonly("page_table_offsets", step_plan_property(&StepPlan::page_table_offsets), "int32 [n + 1].")
      .def_property_readonly("page_table", step_plan_property(&StepPlan::page_table), "int32: entry i's pages are [offsets[i], offsets[i+1]).")
      .def_property_readonly("preempted_ids", step_plan_property(&StepPlan::preempted_ids), "int64: preempted this step.")
      .def_property_readonly("preempted_pages", step_plan_property(&StepPlan::preempted_pages), "int32: device pages each gave up.")
      .def_property_readonly("host_cached_tokens", step_plan_property(&StepPlan::host_cached_tokens), "int32 [n]: of cached_tokens, loaded from host.")
      .def_property_readonly("offload_pages", step_plan_property(&StepPlan::offload_pages, true), "int32 [k, 2]: (device, host) copies done before this step's forward pass.")
      .def_property_readonly("backup_pages", step_plan_property(&StepPlan::backup_pages, true), "int32 [k, 2]: (device, host) asynchronous copies.")
      .def_property_readonly("load_pages", step_plan_property(&StepPlan::load_pages, true), "int32 [k, 2]: (host, device) asynchronous copies.")
      .def_property_readonly("has_async_transfers", &StepPlan::has_async_transfers, "Backups or loads: report this step in update(transfers_done=...) once they land.");

  py::class_<Scheduler>(m, "Scheduler", "Request table, queues and per-step decisions of one replica.")
      .def(py::init<const SchedulerConfig&>(), py::arg("config"))
      .def("add_request", &scheduler_add_request, py::arg("req_id"), py::arg("prompt"),
           py::arg("max_new_tokens"), py::arg("arrival_time") = 0.0, py::arg("tags") = WorkflowTags{},
           py::arg("hints") = RequestHints{},
           "Queue a request; ValueError for a duplicate id, empty prompt, negative max_new_tokens or one that can never fit.")
      .def("schedule", &scheduler_schedule, "Decide the next step; returns its StepPlan.")
      .def("update", &scheduler_update, py::arg("req_ids"), py::arg("tokens"), py::arg("finished"),
           py::arg("transfers_done") = py::none(),
           "Report the step's sampled tokens and finish flags (1: finished, STEP_FAILED: its step failed, nothing "
           "it computed is cached), and the steps whose page transfers landed; returns the ids finished this step.")
      .def("forecast_needs", &Scheduler::forecast_needs, "Which predictions the configured policies read.")
      .def("set_job_work", &Scheduler::set_job_work, py::arg("job"), py::arg("tokens"), py::arg("unblocks") = false,
           "Predicted remaining work (tokens) of a job and whether its calls in flight unblock its next agent, for the pythia policy; negative clears it.")
      .def("set_time", &Scheduler::set_time, py::arg("now"),
           "Advance the clock (seconds) predictions and cache access times are measured on.")
      .def("set_job_forecast", [](Scheduler& self, int32_t job, const JobForecast& f) { self.forecast().set_job(job, f); },
           py::arg("job"), py::arg("forecast"),
           "Predictions about a job's private context for the eviction policies. A job waiting between calls since "
           "`idle_since` is predicted from the gap distribution of (gap_type, gap_agent) given the wait so far, when one was set.")
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
      .def("set_agent_forecast",
           [](Scheduler& self, int32_t workflow_type, int32_t agent, const AgentForecast& f) {
             self.forecast().set_agent(workflow_type, agent, f);
           },
           py::arg("workflow_type"), py::arg("agent"), py::arg("forecast"),
           "Predicted next use of the prefix an agent's jobs share (agent -1: all agents of the type).")
      .def("abort", &Scheduler::abort, py::arg("req_id"), "Drop a request, freeing its pages; False if unknown.")
      .def("flush_cache", &Scheduler::flush_cache, py::call_guard<py::gil_scoped_release>(),
           "Evict every unlocked cached page of both tiers; returns how many.")
      .def("tokens", &scheduler_tokens, py::arg("req_id"), "Prompt plus output so far of a live request.")
      .def("has_request", &Scheduler::has_request, py::arg("req_id"), "Whether the request is live.")
      .def("has_pending_transfers", &Scheduler::has_pending_transfers,
           "Host-tier copies begun and not landed (steps must go on until they do, even with no request).")
      .def("stats", &Scheduler::stats, "Queue lengths, page counts and counters.")
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
