// A deterministic stand-in for the model, used to drive the scheduler in
// tests. It keeps a simulated KV pool: every computed position writes
// (token, position) into its page slot, and every step first checks that all
// earlier positions of the request read back correctly through its page
// table. A wrong page table, a page freed while in use, or a cached prefix
// that does not hold what it claims shows up as a mismatch.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "pythia/scheduler.h"

namespace pythia::testing {

class FakeModel {
 public:
  static constexpr int32_t kVocab = 50;
  static constexpr int32_t kEos = 7;

  /// With host pages, the plan's page copies are executed too: offloads at
  /// once, backups and loads only when they are completed (see step()), so a
  /// request batched before its load landed, or a device page reused before
  /// its backup was taken, reads a wrong KV.
  FakeModel(int32_t page_size, int32_t num_pages, int32_t num_host_pages = 0)
      : page_size_(page_size),
        kv_(static_cast<size_t>(page_size) * num_pages, -1),
        host_kv_(static_cast<size_t>(page_size) * num_host_pages, -1) {}

  /// Decides which asynchronous transfers complete in a step: called with the
  /// steps in flight (oldest first), returns those to complete now. Default:
  /// all of them, at once.
  using CompletionOrder = std::function<std::vector<uint64_t>(const std::vector<uint64_t>&)>;
  void set_completion_order(CompletionOrder order) { completion_order_ = std::move(order); }
  /// Steps whose transfers this model has not completed yet.
  size_t transfers_in_flight() const { return in_flight_.size(); }
  /// Host -> device and device -> host pages copied so far.
  int64_t pages_loaded() const { return pages_loaded_; }
  int64_t pages_offloaded() const { return pages_offloaded_; }

  /// The token the model emits after `seq`: a hash of the whole sequence.
  static int32_t next_token(const std::vector<int32_t>& seq) {
    uint64_t h = 1469598103934665603ULL;
    for (int32_t t : seq) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ULL;
    return static_cast<int32_t>((h >> 17) % kVocab);
  }

  /// Output a request gets when run alone: tokens until max_new or EOS.
  static std::vector<int32_t> reference_output(std::vector<int32_t> seq, int32_t max_new,
                                               bool stop_at_eos) {
    std::vector<int32_t> out;
    while (static_cast<int32_t>(out.size()) < max_new) {
      const int32_t t = next_token(seq);
      out.push_back(t);
      seq.push_back(t);
      if (stop_at_eos && t == kEos) break;
    }
    return out;
  }

  /// Runs one plan and reports it; returns the ids finished in the step.
  std::vector<int64_t> step(Scheduler& sched, bool stop_at_eos = true) {
    const StepPlan& plan = sched.schedule();
    copy_pages(plan.offload_pages, kv_, host_kv_);
    pages_offloaded_ += static_cast<int64_t>(plan.offload_pages.size() / 2);
    if (plan.has_async_transfers()) in_flight_.push_back({plan.step, plan.backup_pages, plan.load_pages});

    std::vector<int32_t> tokens(plan.size(), 0);
    std::vector<uint8_t> finished(plan.size(), 0);
    size_t input_at = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      const std::vector<int32_t>& seq = sched.tokens(plan.req_ids[i]);
      const int32_t* pages = plan.page_table.data() + plan.page_table_offsets[i];
      const int32_t num_pages = plan.page_table_offsets[i + 1] - plan.page_table_offsets[i];
      const int32_t start = plan.start_pos[i], n = plan.num_tokens[i];
      EXPECT_LE(static_cast<int64_t>(start + n), static_cast<int64_t>(num_pages) * page_size_);
      for (int32_t p = 0; p < start; ++p) {
        EXPECT_EQ(kv_[slot(pages, p)], encode(seq[p], p))
            << "request " << plan.req_ids[i] << " reads a wrong KV at position " << p;
      }
      for (int32_t j = 0; j < n; ++j) {
        EXPECT_EQ(plan.input_ids[input_at + j], seq[start + j]);
        kv_[slot(pages, start + j)] = encode(seq[start + j], start + j);
      }
      input_at += n;
      if (plan.samples[i]) {
        tokens[i] = next_token(seq);
        finished[i] = stop_at_eos && tokens[i] == kEos;
        std::vector<int32_t>& last = last_seq_[plan.req_ids[i]];
        last = seq;
        last.push_back(tokens[i]);
      }
    }
    EXPECT_EQ(input_at, plan.input_ids.size());
    // Asynchronous transfers land after this step's forward pass (as late as the core allows): a
    // request batched before its load, or a backup source reused early, reads or saves a wrong KV.
    std::vector<uint64_t> steps;
    for (const auto& t : in_flight_) steps.push_back(t.step);
    const std::vector<uint64_t> done_steps =
        completion_order_ ? completion_order_(steps) : steps;
    for (uint64_t done : done_steps) {
      auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [done](const Pending& t) { return t.step == done; });
      EXPECT_NE(it, in_flight_.end()) << "completion order named step " << done;
      if (it == in_flight_.end()) continue;
      copy_pages(it->backups, kv_, host_kv_);
      copy_pages(it->loads, host_kv_, kv_);
      pages_loaded_ += static_cast<int64_t>(it->loads.size() / 2);
      in_flight_.erase(it);
    }
    last_plan_ = plan;
    return sched.update(plan.req_ids.data(), tokens.data(), finished.data(), plan.size(), done_steps);
  }

  const StepPlan& last_plan() const { return last_plan_; }

  /// Output of a request as of its last sampled step (for max_new_tokens > 0).
  std::vector<int32_t> output_of(int64_t id, size_t prompt_len) const {
    const std::vector<int32_t>& seq = last_seq_.at(id);
    return std::vector<int32_t>(seq.begin() + prompt_len, seq.end());
  }

 private:
  size_t slot(const int32_t* pages, int32_t pos) const {
    return static_cast<size_t>(pages[pos / page_size_]) * page_size_ + pos % page_size_;
  }
  static int64_t encode(int32_t token, int32_t pos) { return static_cast<int64_t>(pos) * 100003 + token; }
  /// Copies whole pages for (source, destination) pairs.
  void copy_pages(const std::vector<int32_t>& pairs, const std::vector<int64_t>& from, std::vector<int64_t>& to) {
    for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
      std::copy_n(from.begin() + static_cast<size_t>(pairs[i]) * page_size_, page_size_,
                  to.begin() + static_cast<size_t>(pairs[i + 1]) * page_size_);
    }
  }
  struct Pending {
    uint64_t step;
    std::vector<int32_t> backups, loads;
  };

  int32_t page_size_;
  std::vector<int64_t> kv_;
  std::vector<int64_t> host_kv_;
  std::vector<Pending> in_flight_;
  CompletionOrder completion_order_;
  int64_t pages_loaded_ = 0, pages_offloaded_ = 0;
  StepPlan last_plan_;
  std::unordered_map<int64_t, std::vector<int32_t>> last_seq_;
};

/// Sequence [start, start + n).
inline std::vector<int32_t> iota_tokens(int32_t start, int32_t n) {
  std::vector<int32_t> v(n);
  for (int32_t i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

}  // namespace pythia::testing
