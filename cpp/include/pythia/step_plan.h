// What one scheduler step decided, as flat arrays.
#pragma once

#include <cstdint>
#include <vector>

namespace pythia {

/// \brief The next step's plan. Entry i of the per-entry arrays describes one
/// request in the batch; decodes come first, then prefill chunks.
struct StepPlan {
  /// The scheduler's step counter; update() acknowledges this step's page
  /// transfers by it.
  uint64_t step = 0;
  std::vector<int64_t> req_ids;
  /// First position whose KV this step computes.
  std::vector<int32_t> start_pos;
  /// Positions computed this step (1 for a decode).
  std::vector<int32_t> num_tokens;
  /// Prefix tokens this request took from the cache at admission (0 unless
  /// this step is the request's first after admission).
  std::vector<int32_t> cached_tokens;
  /// 1 when this step reaches the end of the request's tokens, so the model
  /// produces logits for its last position and a token is sampled.
  std::vector<uint8_t> samples;
  /// Token ids to run, all entries concatenated (sum of num_tokens).
  std::vector<int32_t> input_ids;
  /// Page table of entry i: page_table[page_table_offsets[i] .. [i+1]).
  std::vector<int32_t> page_table_offsets{0};
  std::vector<int32_t> page_table;
  /// Requests preempted in this step (back to waiting, recomputed later) and
  /// the device pages each one gave up.
  std::vector<int64_t> preempted_ids;
  std::vector<int32_t> preempted_pages;
  /// Page copies to start before this step's forward pass, as flattened
  /// (source, destination) pairs: device page -> host page (offload) and host
  /// page -> device page (load). The host tier fills them; without one they
  /// stay empty. Their completion is reported through update().
  std::vector<int32_t> offload_pages;
  std::vector<int32_t> load_pages;

  size_t size() const { return req_ids.size(); }
  void clear() {
    req_ids.clear();
    start_pos.clear();
    num_tokens.clear();
    cached_tokens.clear();
    samples.clear();
    input_ids.clear();
    page_table_offsets.assign(1, 0);
    page_table.clear();
    preempted_ids.clear();
    preempted_pages.clear();
    offload_pages.clear();
    load_pages.clear();
  }
};

}  // namespace pythia
