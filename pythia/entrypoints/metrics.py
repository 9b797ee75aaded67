"""Prometheus metrics at /metrics: token counts, cache hits, queue lengths, TTFT and TPOT."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from pythia.managers.frontend import Frontend

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self.registry = CollectorRegistry()
        r = self.registry
        self.prompt_tokens = Counter("pythia_prompt_tokens", "Prompt tokens of finished requests", registry=r)
        self.generation_tokens = Counter("pythia_generation_tokens", "Generated tokens", registry=r)
        self.cached_tokens = Counter("pythia_cache_hit_tokens", "Prompt tokens served from the prefix cache",
                                     registry=r)
        self.requests = Counter("pythia_requests_finished", "Finished requests", ["finish_reason"], registry=r)
        self.waiting = Gauge("pythia_num_waiting_requests", "Requests waiting for admission", registry=r)
        self.running = Gauge("pythia_num_running_requests", "Requests running", registry=r)
        self.free_pages = Gauge("pythia_free_kv_pages", "Free device KV pages", registry=r)
        self.cached_pages = Gauge("pythia_cached_kv_pages", "Device KV pages held by the prefix cache", registry=r)
        self.host_cached_tokens = Counter("pythia_host_cache_hit_tokens",
                                          "Prompt tokens loaded from the host KV tier", registry=r)
        self.host_pages = Gauge("pythia_host_kv_pages", "Host KV pages by state", ["state"], registry=r)
        self.host_bytes = Gauge("pythia_host_transfer_bytes", "Bytes copied between the KV tiers since start",
                                ["direction"], registry=r)
        self.prefetches = Gauge("pythia_host_prefetches", "Contexts loaded ahead of a predicted call, by outcome",
                                ["outcome"], registry=r)
        self.ttft = Histogram("pythia_time_to_first_token_seconds", "Time to first token", buckets=LATENCY_BUCKETS,
                              registry=r)
        self.tpot = Histogram("pythia_time_per_output_token_seconds", "Time per output token after the first",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.e2e = Histogram("pythia_e2e_request_latency_seconds", "Request latency", buckets=LATENCY_BUCKETS,
                             registry=r)

    def observe(self, result: Any) -> None:
        """Records a finished request (a generation.ResultBuilder)."""
        out = result.out
        now = time.perf_counter()
        self.prompt_tokens.inc(out.prompt_tokens)
        self.generation_tokens.inc(out.completion_tokens)
        self.cached_tokens.inc(out.cached_tokens)
        self.host_cached_tokens.inc(out.host_cached_tokens)
        reason = (out.finish_reason or {}).get("type", "unknown")
        self.requests.labels(finish_reason=reason).inc()
        self.e2e.observe(now - result.start)
        if result.first_token_at is not None:
            self.ttft.observe(result.first_token_at - result.start)
            if out.completion_tokens > 1:
                self.tpot.observe((now - result.first_token_at) / (out.completion_tokens - 1))

    async def render(self) -> bytes:
        reply = await self.frontend.control("stats", timeout=10.0)
        stats = reply.payload
        self.waiting.set(stats.get("num_waiting", 0))
        self.running.set(stats.get("num_running", 0))
        self.free_pages.set(stats.get("free_pages", 0))
        self.cached_pages.set(stats.get("evictable_pages", 0) + stats.get("protected_pages", 0))
        if "num_host_pages" in stats:
            self.host_pages.labels(state="cached").set(stats["cached_host_pages"])
            self.host_pages.labels(state="free").set(stats["free_host_pages"])
            self.host_bytes.labels(direction="device_to_host").set(stats["host_bytes_offloaded"])
            self.host_bytes.labels(direction="host_to_device").set(stats["host_bytes_loaded"])
            for outcome in ("on_time", "late", "unused"):
                self.prefetches.labels(outcome=outcome).set(stats[f"prefetch_{outcome}"])
        return generate_latest(self.registry)
