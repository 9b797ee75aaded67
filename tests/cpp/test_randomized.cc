// Thousands of random operations against simple reference models, with the
// integrity check after every one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "fake_model.h"
#include "pythia/radix_tree.h"
#include "pythia/scheduler.h"

namespace pythia {
namespace {

using Tokens = std::vector<int32_t>;

/// The prefix cache as a set of cached page prefixes: key = tokens of pages
/// [0, k], value = page id of page k.
class ReferenceCache {
 public:
  explicit ReferenceCache(int32_t page_size) : ps_(page_size) {}

  Tokens key(const Tokens& seq, int32_t k) const { return Tokens(seq.begin(), seq.begin() + (k + 1) * ps_); }

  std::vector<int32_t> match(const Tokens& seq) const {
    std::vector<int32_t> pages;
    for (int32_t k = 0; k < static_cast<int32_t>(seq.size()) / ps_; ++k) {
      auto it = pages_.find(key(seq, k));
      if (it == pages_.end()) break;
      pages.push_back(it->second);
    }
    return pages;
  }

  void insert(const Tokens& seq, const std::vector<int32_t>& pages) {
    for (int32_t k = 0; k < static_cast<int32_t>(pages.size()); ++k) {
      if (pages_.emplace(key(seq, k), pages[k]).second) owner_[pages[k]] = key(seq, k);
    }
  }

  /// Removes an evicted page; returns false if it was not cached.
  bool remove(int32_t page) {
    auto it = owner_.find(page);
    if (it == owner_.end()) return false;
    removed_keys_.insert(it->second);
    pages_.erase(it->second);
    owner_.erase(it);
    return true;
  }

  /// Every cached key's one-page-shorter prefix is cached too.
  bool prefix_closed() const {
    for (const auto& kv : pages_) {
      if (kv.first.size() > static_cast<size_t>(ps_) &&
          !pages_.count(Tokens(kv.first.begin(), kv.first.end() - ps_))) {
        return false;
      }
    }
    return true;
  }

  size_t size() const { return pages_.size(); }

 private:
  int32_t ps_;
  std::map<Tokens, int32_t> pages_;
  std::unordered_map<int32_t, Tokens> owner_;
  std::set<Tokens> removed_keys_;
};

/// LRU ranked by re-scanning every candidate at each eviction: the general
/// path that dynamic-priority policies take. It must evict exactly what the
/// incrementally ordered LRU evicts.
class RescanLru final : public EvictionPolicy {
 public:
  const char* name() const override { return "lru-rescan"; }
  double priority(const RadixNode& node) const override { return static_cast<double>(node.last_access); }
};

TEST(Randomized, RadixTreeAgreesWithAReferenceCache) {
  LruEviction lru;
  RescanLru rescan;
  for (const int32_t page_size : {1, 2, 4}) {
    std::mt19937 rng(1234 + page_size);
    RadixTree tree(page_size, lru);
    RadixTree twin(page_size, rescan);  // fed the same operations
    std::vector<RadixNode*> twin_locked;
    ReferenceCache ref(page_size);
    std::vector<std::pair<RadixNode*, Tokens>> locked;
    int32_t next_page = 0;
    auto random_seq = [&] {
      Tokens seq(std::uniform_int_distribution<int>(0, 10 * page_size + 3)(rng));
      for (auto& t : seq) t = std::uniform_int_distribution<int>(0, 2)(rng);
      return seq;
    };
    for (int op = 0; op < 3000; ++op) {
      const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      if (kind < 4) {
        const Tokens seq = random_seq();
        const int32_t n = static_cast<int32_t>(seq.size()) / page_size;
        std::vector<int32_t> pages(n);
        for (auto& p : pages) p = next_page++;
        const auto before = ref.match(seq);
        std::vector<int32_t> tree_pages;
        InsertResult ins = tree.insert(seq.data(), n, pages.data(), {}, &tree_pages);
        twin.insert(seq.data(), n, pages.data(), {});
        ASSERT_EQ(ins.num_present, static_cast<int32_t>(before.size()));
        ASSERT_EQ(ins.num_inserted, n);
        for (int32_t k = 0; k < n; ++k) {
          ASSERT_EQ(tree_pages[k], k < ins.num_present ? before[k] : pages[k]);
        }
        ref.insert(seq, pages);
      } else if (kind < 7) {
        const Tokens seq = random_seq();
        MatchResult m = tree.match_prefix(seq.data(), seq.size());
        MatchResult twin_m = twin.match_prefix(seq.data(), seq.size());
        ASSERT_EQ(m.device_pages, ref.match(seq));
        ASSERT_EQ(twin_m.device_pages, m.device_pages);
        if (kind == 6) {
          tree.lock(m.last_node);
          twin.lock(twin_m.last_node);
          twin_locked.push_back(twin_m.last_node);
          locked.emplace_back(m.last_node, Tokens(seq.begin(), seq.begin() + m.device_pages.size() * page_size));
        }
      } else if (kind == 7 && !locked.empty()) {
        const size_t i = std::uniform_int_distribution<size_t>(0, locked.size() - 1)(rng);
        tree.unlock(locked[i].first);
        locked.erase(locked.begin() + i);
        twin.unlock(twin_locked[i]);
        twin_locked.erase(twin_locked.begin() + i);
      } else {
        const int32_t want = std::uniform_int_distribution<int>(1, 8)(rng);
        const int32_t evictable = tree.evictable_pages();
        std::vector<int32_t> out;
        const int32_t removed = tree.evict(want, out);
        ASSERT_EQ(removed, static_cast<int32_t>(out.size()));
        std::vector<int32_t> twin_out;
        twin.evict(want, twin_out);
        ASSERT_EQ(twin_out, out) << "ordered and re-scanning LRU evicted differently";
        if (evictable >= want) {
          ASSERT_GE(removed, want);
        } else {
          ASSERT_EQ(removed, evictable);
        }
        for (int32_t page : out) ASSERT_TRUE(ref.remove(page)) << "evicted an uncached page";
        ASSERT_TRUE(ref.prefix_closed()) << "evicted a page whose extension stayed cached";
        for (const auto& l : locked) {
          ASSERT_EQ(ref.match(l.second).size(), l.second.size() / page_size) << "evicted a locked page";
        }
      }
      std::unordered_map<const RadixNode*, int32_t> expected;
      for (const auto& l : locked) {
        for (const RadixNode* n = l.first; n != tree.root(); n = n->parent) ++expected[n];
      }
      ASSERT_NO_THROW(tree.check_integrity(expected)) << "after op " << op;
      std::unordered_map<const RadixNode*, int32_t> twin_expected;
      for (const RadixNode* l : twin_locked) {
        for (const RadixNode* n = l; n != twin.root(); n = n->parent) ++twin_expected[n];
      }
      ASSERT_NO_THROW(twin.check_integrity(twin_expected)) << "after op " << op;
      ASSERT_EQ(static_cast<size_t>(tree.cached_device_pages()), ref.size());
    }
  }
}

TEST(Randomized, SchedulerOutputsMatchRunningEachRequestAlone) {
  int64_t preemptions = 0, evictions = 0, cache_hits = 0, host_hits = 0, offloads = 0, backups = 0, prefetched = 0;
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    SchedulerConfig c;
    c.page_size = std::vector<int32_t>{1, 2, 4, 16}[pick(0, 3)];
    c.num_device_pages = pick(48, 160) / c.page_size + 4;
    c.max_batch_tokens = pick(4, 64);
    c.max_running_requests = pick(1, 8);
    c.schedule_policy = std::vector<const char*>{"fcfs", "lpm", "pfcfs", "plas", "pythia"}[pick(0, 4)];
    c.eviction_policy = std::vector<const char*>{"lru", "pythia", "kvflow", "ttl"}[pick(0, 3)];
    c.admission_policy = pick(0, 1) ? "pythia" : "ratio";
    c.max_job_hold_s = pick(0, 30);  // steps: the test's clock advances one per step
    c.init_new_token_ratio = pick(0, 10) / 10.0;
    c.min_new_token_ratio = c.init_new_token_ratio * pick(0, 10) / 10.0;
    c.new_token_ratio_decay = 0.01;
    if (seed % 2 == 1) {  // a host tier, its transfers completing late and out of order
      c.num_host_pages = pick(0, 3 * c.num_device_pages);
      c.host_write_policy = host_write_policy_names()[pick(0, 2)];
      c.host_policy = pick(0, 1) ? "pythia" : "lru";
    }
    SCOPED_TRACE("host pages " + std::to_string(c.num_host_pages) + " " + c.host_write_policy + "/" + c.host_policy);
    SCOPED_TRACE("seed " + std::to_string(seed) + " page_size " + std::to_string(c.page_size) +
                 " pages " + std::to_string(c.num_device_pages) + " policy " + c.schedule_policy + "/" + c.eviction_policy + "/" + c.admission_policy);
    Scheduler sched(c);
    testing::FakeModel model(c.page_size, c.num_device_pages, c.num_host_pages);
    model.set_completion_order([&](const std::vector<uint64_t>& in_flight) {
      std::vector<uint64_t> done;
      for (uint64_t step : in_flight) {
        if (pick(0, 2) == 0) done.push_back(step);
      }
      std::shuffle(done.begin(), done.end(), rng);
      return done;
    });
    for (int32_t job = 0; job < 5; job += 2) sched.set_job_work(job, pick(0, 500), pick(0, 1));  // some jobs predicted
    // Forecasts that change as the run goes, some jobs dead, some pinned.
    auto forecast_job = [&](int32_t job) {
      JobForecast f;
      f.next_use = pick(0, 50);
      f.dead_after = pick(0, 60);
      f.steps_to_execution = pick(0, 3);
      f.pinned_until = pick(0, 60);
      f.context_tokens = pick(0, c.num_device_pages * c.page_size);
      sched.forecast().set_job(job, f);
    };

    // A few shared "system prompts" so requests hit the cache.
    std::vector<Tokens> systems(3);
    for (auto& s : systems) {
      s.resize(pick(4, 24));
      for (auto& t : s) t = pick(0, 40);
    }
    struct Expected { Tokens prompt; int32_t max_new; bool aborted = false; bool done = false; };
    std::map<int64_t, Expected> reqs;
    int64_t next_id = 0;
    int steps = 0;
    for (int op = 0; op < 400 || sched.stats().num_running + sched.stats().num_waiting > 0; ++op) {
      ASSERT_LT(op, 20000) << "requests never finished";
      const int kind = pick(0, 9);
      if (op < 400 && kind < 3) {
        Tokens prompt = systems[pick(0, 2)];
        prompt.resize(pick(1, static_cast<int>(prompt.size())));
        for (int i = pick(0, 12); i > 0; --i) prompt.push_back(pick(0, 40));
        const int32_t max_new = pick(0, 12);
        const int64_t id = next_id++;
        try {
          sched.add_request(id, prompt, max_new, 0.0, WorkflowTags{0, static_cast<int32_t>(id % 5), pick(0, 2)},
                            RequestHints{-1, pick(-1, 12), /*opens_job=*/pick(0, 3) == 0});
          forecast_job(static_cast<int32_t>(id % 5));
          if (pick(0, 20) == 0) sched.forecast().end_job(static_cast<int32_t>(id % 5));
          if (pick(0, 30) == 0) {
            try {
              sched.forget_job(pick(0, 4));
            } catch (const std::logic_error&) {
              // The job has a live request: forgetting must wait, and changed nothing.
            }
          }
          reqs[id] = Expected{prompt, max_new};
        } catch (const std::invalid_argument&) {
          ASSERT_GT(sched.cache().pages_for(prompt.size() + max_new), c.num_device_pages);
        }
      } else if (op < 400 && kind == 3 && !reqs.empty()) {
        auto it = reqs.begin();
        std::advance(it, pick(0, static_cast<int>(reqs.size()) - 1));
        if (!it->second.done && !it->second.aborted && sched.abort(it->first)) it->second.aborted = true;
      } else {
        sched.set_time(steps);
        for (int64_t id : model.step(sched)) reqs.at(id).done = true;
        ++steps;
      }
      ASSERT_NO_THROW(sched.check_integrity()) << "after op " << op;
    }
    for (const auto& [id, e] : reqs) {
      if (e.aborted || e.max_new == 0) continue;
      ASSERT_TRUE(e.done) << "request " << id;
      EXPECT_EQ(model.output_of(id, e.prompt.size()), testing::FakeModel::reference_output(e.prompt, e.max_new, true))
          << "request " << id;
    }
    preemptions += sched.stats().num_preemptions;
    evictions += sched.stats().num_evicted_pages;
    cache_hits += sched.stats().cached_prompt_tokens;
    host_hits += sched.stats().host.host_hit_tokens;
    offloads += sched.stats().host.pages_offloaded;
    backups += sched.stats().host.pages_backed_up;
    prefetched += sched.stats().host.prefetched_pages;
    // Backups may still be in flight with nothing left to run: they land, then everything is freed.
    for (int i = 0; i < 1000 && sched.stats().transfers_in_flight > 0; ++i) {
      model.step(sched);
      ASSERT_NO_THROW(sched.check_integrity());
    }
    sched.flush_cache();
    EXPECT_EQ(sched.stats().free_pages, c.num_device_pages) << "pages leaked";
    EXPECT_EQ(sched.stats().free_host_pages, c.num_host_pages) << "host pages leaked";
  }
  // The scenarios must have exercised the paths they are meant to check.
  EXPECT_GT(preemptions, 0);
  EXPECT_GT(evictions, 0);
  EXPECT_GT(cache_hits, 0);
  EXPECT_GT(host_hits, 0);
  EXPECT_GT(offloads, 0);
  EXPECT_GT(backups, 0);
  EXPECT_GT(prefetched, 0);
  std::printf("randomized scheduler: %lld preemptions, %lld evicted pages, %lld cached prompt tokens "
              "(%lld from host), %lld pages offloaded, %lld backed up\n",
              static_cast<long long>(preemptions), static_cast<long long>(evictions),
              static_cast<long long>(cache_hits), static_cast<long long>(host_hits),
              static_cast<long long>(offloads), static_cast<long long>(backups));
}

}  // namespace
}  // namespace pythia
