#include "pythia/scheduler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace pythia {
namespace {

/// A workflow job's first call that has never run (a preempted one already has its job live):
/// what pythia admission's working-set gate may hold.
bool unstarted_opener(const Request& req) { return req.hints.opens_job && req.num_preemptions == 0; }

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_((config.validate(), config)),
      cache_(config.page_size, config.num_device_pages, config.num_host_pages,
             make_eviction_policy(config.eviction_policy, forecast_)),
      policy_(make_schedule_policy(config.schedule_policy, config)),
      new_token_ratio_(config.init_new_token_ratio),
      reserve_by_prediction_(config.admission_policy == "pythia") {
  if (config_.num_host_pages > 0) {
    const bool pythia_host = config_.host_policy == "pythia";
    cache_.enable_host_tier(parse_host_write_policy(config_.host_write_policy),
                            make_eviction_policy(pythia_host ? "pythia" : "lru", forecast_),
                            /*offload_on_evict=*/pythia_host);
    if (pythia_host && config_.host_prefetch_s > 0) cache_.enable_prefetch();
  }
}

void Scheduler::add_request(int64_t id, std::vector<int32_t> prompt, int32_t max_new_tokens,
                            double arrival_time, const WorkflowTags& tags,
                            const RequestHints& hints) {
  const std::string who = "request " + std::to_string(id);
  if (requests_.count(id)) throw std::invalid_argument(who + ": id is already in use");
  if (prompt.empty()) throw std::invalid_argument(who + ": empty prompt");
  if (max_new_tokens < 0) throw std::invalid_argument(who + ": max_new_tokens is negative");
  const int64_t positions = static_cast<int64_t>(prompt.size()) + max_new_tokens;
  if (cache_.pages_for(positions) > config_.num_device_pages) {
    throw std::invalid_argument(who + ": prompt (" + std::to_string(prompt.size()) +
                                " tokens) plus max_new_tokens (" + std::to_string(max_new_tokens) +
                                ") needs " + std::to_string(cache_.pages_for(positions)) +
                                " KV pages, the pool has " +
                                std::to_string(config_.num_device_pages));
  }
  auto req = std::make_unique<Request>();
  req->id = id;
  req->prompt_len = static_cast<int32_t>(prompt.size());
  req->tokens = std::move(prompt);
  req->max_new_tokens = max_new_tokens;
  req->arrival_time = arrival_time;
  req->arrival_seq = next_arrival_seq_++;
  req->arrival_step = step_;
  req->tags = tags;
  if (tags.job >= 0) job_first_seq_.emplace(tags.job, req->arrival_seq);
  req->hints = hints;
  req->hints.opens_job = hints.opens_job && tags.job >= 0;
  req->queued_at = forecast_.now();
  waiting_.push_back(req.get());
  requests_.emplace(id, std::move(req));
}

int32_t Scheduler::reserve_tokens(const Request& req) const {
  const int32_t remaining = std::max(0, std::min(req.max_new_tokens - req.output_len(),
                                                config_.reserve_clip_tokens));
  if (reserve_by_prediction_ && req.hints.predicted_output_tokens >= 0) {
    // Past its P99 the request grows page by page, like any other.
    return std::clamp(req.hints.predicted_output_tokens - req.output_len(), 0, remaining);
  }
  return static_cast<int32_t>(std::ceil(remaining * new_token_ratio_));
}

int32_t Scheduler::future_pages(const Request& req) const {
  const int32_t want = cache_.pages_for(static_cast<int64_t>(req.seq_len()) + reserve_tokens(req));
  return std::max(0, want - static_cast<int32_t>(req.pages.size()));
}

const StepPlan& Scheduler::schedule() {
  if (plan_pending_) throw std::logic_error("schedule: the previous plan awaits update()");
  // A caller still holding the last plan (Python's zero-copy views) keeps it
  // intact: this step writes a fresh one. Otherwise the buffers are reused.
  if (plan_.use_count() > 1) plan_ = std::make_shared<StepPlan>();
  plan_->clear();
  plan_reqs_.clear();
  plan_->step = ++step_;
  new_token_ratio_ = std::max(config_.min_new_token_ratio,
                              new_token_ratio_ - config_.new_token_ratio_decay);
  int32_t budget = config_.max_batch_tokens;
  long_prefill_left_ = config_.max_long_prefill_tokens > 0 ? config_.max_long_prefill_tokens : budget;
  bool preempted = false;
  schedule_running(budget, preempted);
  // As vLLM does: a step that had to preempt admits nobody new.
  if (!preempted) admit_waiting(budget);
  // After admission, so that the calls that are here get the free pages first.
  if (config_.num_host_pages > 0 && config_.host_prefetch_s > 0) cache_.prefetch(forecast_, config_.host_prefetch_s);
  finish_plan();
  plan_pending_ = true;
  return *plan_;
}

void Scheduler::schedule_running(int32_t& budget, bool& preempted) {
  auto done = [this](const Request* r) { return r->scheduled_step == step_; };
  // Decodes first, so that a long chunked prefill never starves them.
  std::vector<Request*> snapshot;
  for (const bool decode_pass : {true, false}) {
    snapshot = running_;  // preemption edits running_ while we walk it
    for (Request* req : snapshot) {
      if (req->state != RequestState::kRunning || done(req) || !cache_.ready(*req)) continue;
      const int32_t remaining = req->seq_len() - req->num_computed;
      if ((remaining == 1) != decode_pass) continue;
      if (budget <= 0) return;
      const int32_t n = decode_pass ? 1 : isolate_long(*req, std::min(remaining, budget));
      if (n == 0) continue;
      while (!cache_.grow(*req, req->num_computed + n)) {
        // Preempt the highest-ranked request not yet in this step's batch.
        Request* victim = nullptr;
        for (Request* cand : running_) {
          if (done(cand)) continue;
          if (victim == nullptr ||
              policy_->preempt_rank(*cand, *this) >= policy_->preempt_rank(*victim, *this)) {
            victim = cand;
          }
        }
        preempt(*victim);
        preempted = true;
        if (victim == req) break;
      }
      if (req->state != RequestState::kRunning) continue;
      add_to_plan(*req, n);
      budget -= n;
    }
  }
}

void Scheduler::admit_waiting(int32_t& budget, bool gate) {
  if (waiting_.empty()) return;
  std::vector<Request*> order = waiting_;
  policy_->order_waiting(order, *this);
  int32_t reserved = 0;
  for (const Request* req : running_) reserved += future_pages(*req);

  size_t num_admitted = 0, num_held = 0;
  int64_t live_context = -1;  // tokens of live jobs' contexts, computed when a new job asks
  // With a host tier, a live job's context parked in host memory comes back by a copy, not a
  // re-prefill: the working set that must fit is the two tiers'.
  const int64_t pool_tokens =
      static_cast<int64_t>(config_.num_device_pages + config_.num_host_pages) * config_.page_size;
  for (Request* req : order) {
    if (static_cast<int32_t>(running_.size()) >= config_.max_running_requests || budget <= 0) break;
    if (gate && reserve_by_prediction_ && unstarted_opener(*req) &&
        forecast_.now() - req->queued_at < config_.max_job_hold_s) {
      // Working-set gate: a new job waits while the contexts of live jobs (running, or
      // expected back from a tool call) already fill the pool. Admitting it would evict
      // contexts about to be reused, and every job would re-prefill (thrashing); jobs
      // with cached contexts behind it in the queue go on meanwhile. The wait is bounded,
      // as live jobs may keep calling for longer than a new one should wait.
      if (live_context < 0) live_context = forecast_.live_context_tokens(queued_new_jobs());
      if (live_context > 0 && live_context + req->prompt_len > pool_tokens) {
        ++num_held;
        continue;
      }
      live_context += req->prompt_len;
    }
    if (config_.max_long_prefill_tokens > 0 && req->prompt_len >= config_.long_context_tokens &&
        long_prefill_left_ <= 0) {
      continue;  // long-context isolation: this step's share for long prompts is spent
    }
    cache_.attach_prefix(*req);
    // With nothing running, admit whatever fits without the output reserve:
    // waiting for memory that can only come from running requests would stall.
    const int32_t need = running_.empty()
                             ? cache_.pages_for(req->seq_len()) - static_cast<int32_t>(req->pages.size())
                             : future_pages(*req);
    if (need + reserved > cache_.available_pages()) {
      cache_.release(*req);
      break;  // Head-of-line: later requests wait too, as in FCFS engines.
    }
    // A prefix continued in host memory is loaded instead of recomputed: the same pages.
    cache_.load_host_prefix(*req);
    const int32_t n = isolate_long(*req, std::min(req->seq_len() - req->num_computed, budget));
    if (n == 0) {  // a long prompt past this step's long-prefill cap: shorter ones go ahead
      cache_.release(*req);
      continue;
    }
    if (!cache_.grow(*req, req->num_computed + n)) {
      cache_.release(*req);
      break;
    }
    reserved += future_pages(*req);
    req->state = RequestState::kRunning;
    running_.push_back(req);
    ++num_admitted;
    prompt_tokens_ += req->prompt_len;
    cached_prompt_tokens_ += std::min(req->num_cached, req->prompt_len);
    if (!cache_.ready(*req)) continue;  // batched once its pages have landed
    add_to_plan(*req, n);
    budget -= n;
  }
  if (num_admitted > 0) {
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                  [](Request* r) { return r->state == RequestState::kRunning; }),
                   waiting_.end());
  }
  // The gate saves compute for contexts about to be reused; with nothing running it would only
  // leave the device idle, so then the held jobs go ahead (work-conserving).
  if (num_held > 0 && running_.empty() && budget > 0) admit_waiting(budget, /*gate=*/false);
}

std::unordered_set<int32_t> Scheduler::queued_new_jobs() const {
  // The profiler counts a job's call as in flight from its arrival, so a held job's forecast says
  // "in a call": its context is not in the pool yet and must not hold itself or other new jobs.
  std::unordered_set<int32_t> jobs;
  for (const Request* req : waiting_) {
    if (unstarted_opener(*req)) jobs.insert(req->tags.job);
  }
  // A job with a call already running (a sibling sent before the opener ran) is in the pool.
  for (const Request* req : running_) jobs.erase(req->tags.job);
  return jobs;
}

int32_t Scheduler::isolate_long(const Request& req, int32_t n) {
  if (config_.max_long_prefill_tokens == 0 || req.prompt_len < config_.long_context_tokens ||
      req.seq_len() - req.num_computed <= 1) {
    return n;
  }
  n = std::min(n, long_prefill_left_);
  long_prefill_left_ -= n;
  return n;
}

void Scheduler::add_to_plan(Request& req, int32_t num_tokens) {
  // The admission's cache hit is reported with the request's first batch after it.
  const int32_t cached_tokens = req.cached_reported ? 0 : req.num_cached;
  const int32_t host_cached_tokens = req.cached_reported ? 0 : req.num_host_cached;
  req.cached_reported = true;
  req.scheduled_step = step_;
  plan_reqs_.push_back(&req);
  plan_->req_ids.push_back(req.id);
  plan_->start_pos.push_back(req.num_computed);
  plan_->num_tokens.push_back(num_tokens);
  plan_->cached_tokens.push_back(cached_tokens);
  plan_->host_cached_tokens.push_back(host_cached_tokens);
  plan_->samples.push_back(req.num_computed + num_tokens == req.seq_len() ? 1 : 0);
}

void Scheduler::finish_plan() {
  // Page tables and inputs are copied only now: a request's table can still
  // change while later entries are scheduled (eviction never touches locked
  // pages, but a preemption in the same step can drop an entry).
  for (size_t i = 0; i < plan_reqs_.size(); ++i) {
    const Request& req = *plan_reqs_[i];
    plan_->page_table.insert(plan_->page_table.end(), req.pages.begin(), req.pages.end());
    plan_->page_table_offsets.push_back(static_cast<int32_t>(plan_->page_table.size()));
    const auto first = req.tokens.begin() + plan_->start_pos[i];
    plan_->input_ids.insert(plan_->input_ids.end(), first, first + plan_->num_tokens[i]);
  }
  cache_.take_transfers(*plan_);
}

void Scheduler::preempt(Request& victim) {
  plan_->preempted_ids.push_back(victim.id);
  plan_->preempted_pages.push_back(static_cast<int32_t>(victim.pages.size()));
  cache_.release(victim);
  victim.state = RequestState::kWaiting;
  ++victim.num_preemptions;
  ++num_preemptions_;
  remove_running(&victim);
  waiting_.insert(waiting_.begin(), &victim);
  new_token_ratio_ = config_.init_new_token_ratio;
}

void Scheduler::remove_running(Request* req) {
  running_.erase(std::find(running_.begin(), running_.end(), req));
}

std::vector<int64_t> Scheduler::update(const int64_t* req_ids, const int32_t* tokens,
                                       const uint8_t* finished, size_t n,
                                       const std::vector<uint64_t>& transfers_done) {
  if (!plan_pending_) throw std::logic_error("update: no plan is pending");
  for (uint64_t step : transfers_done) {
    if (!cache_.transfers_pending(step)) {
      throw std::invalid_argument("update: step " + std::to_string(step) +
                                  " has no page transfers in flight");
    }
  }
  if (n != plan_->size()) {
    throw std::invalid_argument("update: got " + std::to_string(n) + " entries for a plan of " +
                                std::to_string(plan_->size()));
  }
  for (size_t i = 0; i < n; ++i) {
    if (req_ids[i] != plan_->req_ids[i]) {
      throw std::invalid_argument("update: entry " + std::to_string(i) + " is request " +
                                  std::to_string(req_ids[i]) + ", the plan has " +
                                  std::to_string(plan_->req_ids[i]));
    }
  }
  std::vector<int64_t> done;
  for (size_t i = 0; i < n; ++i) {
    Request& req = *plan_reqs_[i];
    if (finished[i] == kStepFailed) {
      // Nothing this step computed for it is trusted: its KV is not cached.
      cache_.release(req);
      remove_running(&req);
      done.push_back(req.id);
      requests_.erase(req.id);
      continue;
    }
    req.num_computed += plan_->num_tokens[i];
    req.attained_service += plan_->num_tokens[i];
    if (req.tags.job >= 0) job_service_[req.tags.job] += plan_->num_tokens[i];
    const bool sampled = plan_->samples[i] != 0;
    if (sampled && req.output_len() < req.max_new_tokens) req.tokens.push_back(tokens[i]);
    if (finished[i] || (sampled && req.output_len() >= req.max_new_tokens)) {
      cache_.release(req);
      remove_running(&req);
      done.push_back(req.id);
      requests_.erase(req.id);
    } else if (!sampled || plan_->num_tokens[i] > 1) {
      cache_.cache_prefix(req);
    }
  }
  for (uint64_t step : transfers_done) cache_.complete_transfers(step);
  plan_pending_ = false;
  for (int64_t id : deferred_aborts_) {
    if (requests_.count(id)) drop(id);
  }
  deferred_aborts_.clear();
  return done;
}

bool Scheduler::abort(int64_t id) {
  if (!requests_.count(id)) return false;
  if (plan_pending_ && std::find(plan_->req_ids.begin(), plan_->req_ids.end(), id) != plan_->req_ids.end()) {
    deferred_aborts_.push_back(id);
  } else {
    drop(id);
  }
  return true;
}

void Scheduler::drop(int64_t id) {
  Request* req = requests_.at(id).get();
  if (req->state == RequestState::kRunning) {
    cache_.release(*req);
    remove_running(req);
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), req));
  }
  requests_.erase(id);
}

int64_t Scheduler::attained_service(const Request& req) const {
  if (req.tags.job < 0) return req.attained_service;
  auto it = job_service_.find(req.tags.job);
  return it == job_service_.end() ? 0 : it->second;
}

double Scheduler::predicted_job_work(const Request& req) const {
  if (req.tags.job < 0) return -1.0;
  auto it = job_work_.find(req.tags.job);
  return it == job_work_.end() ? -1.0 : it->second.tokens;
}

uint64_t Scheduler::job_arrival_seq(const Request& req) const {
  if (req.tags.job < 0) return req.arrival_seq;
  auto it = job_first_seq_.find(req.tags.job);
  return it == job_first_seq_.end() ? req.arrival_seq : it->second;
}

bool Scheduler::unblocks_downstream(const Request& req) const {
  if (req.tags.job < 0) return false;
  auto it = job_work_.find(req.tags.job);
  return it != job_work_.end() && it->second.unblocks;
}

void Scheduler::set_job_work(int32_t job, double tokens, bool unblocks) {
  if (job < 0) throw std::invalid_argument("set_job_work: job ids are >= 0");
  if (tokens < 0) {
    job_work_.erase(job);
  } else {
    job_work_[job] = {tokens, unblocks};
  }
}

int32_t Scheduler::forget_job(int32_t job) {
  if (job < 0) throw std::invalid_argument("forget_job: job ids are >= 0");
  for (const auto& kv : requests_) {
    if (kv.second->tags.job == job) {
      throw std::logic_error("forget_job: job " + std::to_string(job) + " still has request " +
                             std::to_string(kv.first) + " live");
    }
  }
  forecast_.forget_job(job);
  cache_.forget_job(job);
  job_work_.erase(job);
  job_service_.erase(job);
  job_first_seq_.erase(job);
  return cache_.retag_job(job, WorkflowTags::kEndedJob);
}

int32_t Scheduler::flush_cache() {
  const int32_t device = static_cast<int32_t>(cache_.evict(cache_.tree().evictable_pages()).size());
  return device + cache_.flush_host();
}

const std::vector<int32_t>& Scheduler::tokens(int64_t id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) throw std::out_of_range("unknown request " + std::to_string(id));
  return it->second->tokens;
}

ForecastNeeds Scheduler::forecast_needs() const {
  ForecastNeeds needs = policy_->reads();
  needs |= cache_.eviction_policy().reads();
  if (reserve_by_prediction_) {
    needs.output_p99 = true;
    // The working-set gate weighs live jobs' contexts, which job forecasts carry.
    if (config_.max_job_hold_s > 0) needs.job_forecasts = true;
  }
  if (config_.num_host_pages > 0 && config_.host_policy == "pythia") {
    needs.job_forecasts = needs.agent_forecasts = true;
  }
  return needs;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.num_waiting = static_cast<int32_t>(waiting_.size());
  s.num_running = static_cast<int32_t>(running_.size());
  s.free_pages = cache_.device_pool().num_free();
  s.evictable_pages = cache_.tree().evictable_pages();
  s.protected_pages = cache_.tree().protected_pages();
  s.cached_host_pages = cache_.tree().cached_host_pages();
  s.num_preemptions = num_preemptions_;
  s.num_evicted_pages = cache_.num_evicted_pages();
  s.prompt_tokens = prompt_tokens_;
  s.cached_prompt_tokens = cached_prompt_tokens_;
  s.host = cache_.host_stats();
  s.free_host_pages = cache_.host_pool().num_free();
  s.transfers_in_flight = static_cast<int32_t>(cache_.tree().num_transfers());
  s.new_token_ratio = new_token_ratio_;
  return s;
}

void Scheduler::check_integrity() const {
  std::unordered_set<const Request*> seen;
  for (const Request* req : waiting_) {
    const std::string who = "scheduler: waiting request " + std::to_string(req->id);
    if (req->state != RequestState::kWaiting) throw std::logic_error(who + " is not marked waiting");
    if (!req->pages.empty() || req->last_node != nullptr) throw std::logic_error(who + " holds pages");
    if (!seen.insert(req).second) throw std::logic_error(who + " is queued twice");
  }
  std::vector<const Request*> holders;
  for (const Request* req : running_) {
    const std::string who = "scheduler: running request " + std::to_string(req->id);
    if (req->state != RequestState::kRunning) throw std::logic_error(who + " is not marked running");
    if (!seen.insert(req).second) throw std::logic_error(who + " is queued twice");
    if (req->num_computed >= req->seq_len() + 1) throw std::logic_error(who + " computed past its tokens");
    holders.push_back(req);
  }
  if (seen.size() != requests_.size()) {
    throw std::logic_error("scheduler: " + std::to_string(requests_.size()) + " requests but " +
                           std::to_string(seen.size()) + " queued");
  }
  for (const auto& kv : requests_) {
    if (!seen.count(kv.second.get())) {
      throw std::logic_error("scheduler: request " + std::to_string(kv.first) + " is in no queue");
    }
  }
  cache_.check_integrity(holders);
}

}  // namespace pythia
