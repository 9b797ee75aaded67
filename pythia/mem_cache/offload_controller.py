"""Carries out the host tier's page copies that the core's step plans list (issue #14).

The core decides, this moves bytes (ARCHITECTURE.md §4). Per plan, in the order StepPlan
documents: offloads (device -> host) finish before the step's forward pass may overwrite their
device pages; backups (device -> host) and loads (host -> device) are asynchronous, and the plan's
step is reported to the core once both have landed. On the CPU every copy is synchronous, so a
plan's step is reported in its own update(); on a GPU they run on a side stream and an event per
step says when they have landed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pythia.kernels.kv_transfer import KVTransfer


@dataclass
class TransferCounters:
    bytes_offloaded: int = 0  # device -> host, at eviction and as backups
    bytes_loaded: int = 0  # host -> device
    steps_with_transfers: int = 0
    seconds: float = 0.0  # wall time of synchronous copies (CPU), for the step log


@dataclass
class _InFlight:
    step: int
    event: object = field(default=None)


class OffloadController:
    def __init__(self, transfer: KVTransfer) -> None:
        self.transfer = transfer
        self.page_copy_bytes = transfer.host.page_bytes * transfer.host.num_buffers
        self.counters = TransferCounters()
        self.side_stream = torch.cuda.Stream() if transfer.on_gpu else None
        self.in_flight: list[_InFlight] = []

    def run(self, plan) -> list[int]:
        """Starts (or, on the CPU, performs) the plan's copies; returns the steps whose
        asynchronous copies have landed since the last call, for the core's update()."""
        offloads, backups, loads = plan.offload_pages, plan.backup_pages, plan.load_pages
        n_out, n_in = offloads.shape[0] + backups.shape[0], loads.shape[0]
        if n_out or n_in:
            self.counters.steps_with_transfers += 1
            self.counters.bytes_offloaded += n_out * self.page_copy_bytes
            self.counters.bytes_loaded += n_in * self.page_copy_bytes
        if self.side_stream is None:
            # Offloads first: their device pages may be the loads' destinations.
            self.transfer.copy(offloads, to_host=True)
            self.transfer.copy(backups, to_host=True)
            self.transfer.copy(loads, to_host=False)
            return [plan.step] if plan.has_async_transfers else []
        return self._run_on_gpu(plan, offloads, backups, loads)

    def _run_on_gpu(self, plan, offloads, backups, loads) -> list[int]:
        compute = torch.cuda.current_stream()
        side = self.side_stream
        # The copies read KV that earlier forward passes wrote on the compute stream.
        side.wait_stream(compute)
        if offloads.shape[0]:
            self.transfer.copy(offloads, to_host=True, stream=side.cuda_stream)
            # The forward pass may write the offloaded device pages: it waits for the copy.
            compute.wait_stream(side)
        if plan.has_async_transfers:
            self.transfer.copy(backups, to_host=True, stream=side.cuda_stream)
            self.transfer.copy(loads, to_host=False, stream=side.cuda_stream)
            event = torch.cuda.Event()
            event.record(side)
            self.in_flight.append(_InFlight(plan.step, event))
        done = [t.step for t in self.in_flight if t.event.query()]
        if done:
            self.in_flight = [t for t in self.in_flight if t.step not in done]
        return done

    def drain(self) -> list[int]:
        """Waits for every copy in flight; returns their steps."""
        for t in self.in_flight:
            t.event.synchronize()
        done = [t.step for t in self.in_flight]
        self.in_flight = []
        return done
