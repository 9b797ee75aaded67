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
  /// Host-tier page copies, as flattened (source, destination) pairs; empty
  /// without a host tier. Executed in this order, offloads first:
  /// - offload_pages: device -> host, finished before this step's forward
  ///   pass writes any KV (the device page may be reused in this step).
  /// - backup_pages: device -> host, asynchronous; the device page stays.
  /// - load_pages: host -> device, asynchronous; requests that need the pages
  ///   are not in a batch until they land.
  /// When backups or loads are present, update() must eventually list this
  /// step in transfers_done, once both have completed.
  std::vector<int32_t> offload_pages;
  std::vector<int32_t> backup_pages;
  std::vector<int32_t> load_pages;
  /// Of cached_tokens, how many came from host copies.
  std::vector<int32_t> host_cached_tokens;

  bool has_async_transfers() const { return !backup_pages.empty() || !load_pages.empty(); }

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
    backup_pages.clear();
    load_pages.clear();
    host_cached_tokens.clear();
  }
};

}  // namespace pythia
