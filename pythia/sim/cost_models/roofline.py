"""GPU step times from a roofline: the slower of compute and HBM traffic, at stated efficiencies.

Nothing here was measured on a GPU; every figure is a published number or a stated assumption,
each cited beside it. A step runs the whole batch in one forward pass:

    compute = 2 * params * positions + 4 * layers * heads * head_dim * (query, key) pairs
    traffic = weights + KV read (each entry's context before its positions) + KV written
    step    = overhead + max(compute / (peak FLOP/s * compute efficiency),
                             traffic / (HBM bytes/s * bandwidth efficiency))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pythia.sim.cost_model import BatchShape, CostModel


@dataclass(frozen=True)
class ModelShape:
    """A decoder's sizes, as far as the roofline needs them."""

    params: float  # parameters; 2 FLOPs each per position (a multiply and an add)
    layers: int
    heads: int  # query heads
    kv_heads: int
    head_dim: int
    weight_bytes: float  # read once per step
    dtype_bytes: int

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes  # K and V

    @property
    def attention_flops_per_pair(self) -> int:
        return 4 * self.layers * self.heads * self.head_dim  # q.k and p.v, 2 FLOPs per multiply-add each


# Meta-Llama-3-8B config.json (huggingface.co/meta-llama/Meta-Llama-3-8B): num_hidden_layers 32,
# num_attention_heads 32, num_key_value_heads 8, hidden_size 4096 (head_dim 128); 8.03 B parameters
# (the model card). bf16 weights: 16 GB, as issue #13 states. KV per token: 2 * 32 * 8 * 128 * 2 B
# = 131,072 B = 128 KiB.
LLAMA3_8B = ModelShape(params=8.03e9, layers=32, heads=32, kv_heads=8, head_dim=128, weight_bytes=16e9,
                       dtype_bytes=2)


@dataclass(frozen=True)
class Roofline(CostModel):
    name: str
    description: str
    model: ModelShape
    peak_flops: float
    """Dense bf16 tensor-core FLOP/s (the datasheet's sparse figure halved)."""
    hbm_bytes_per_s: float
    hbm_bytes: float
    """Device memory: what the KV pool is carved from, less the weights."""
    host_link_bytes_per_s: float
    """One-way device <-> host copy bandwidth, for page transfers."""
    compute_efficiency: float
    bandwidth_efficiency: float
    step_overhead_s: float
    """Per-step cost off the GPU's critical path: scheduling, batch building, launch."""

    def step_s(self, batch: BatchShape) -> float:
        lens, starts, contexts = batch.prefill_lens, batch.prefill_starts, batch.decode_contexts
        if not len(lens) and not len(contexts):
            return 0.0
        m = self.model
        positions = float(lens.sum()) + len(contexts)
        # A chunk's query i (0-based) attends to start + i + 1 keys; a decode entry to its context.
        pairs = float((lens * starts + lens * (lens + 1) / 2).sum()) + float(contexts.sum())
        flops = 2 * m.params * positions + m.attention_flops_per_pair * pairs
        kv_read = float(starts.sum()) + float((contexts - 1).sum())
        traffic = m.weight_bytes + m.kv_bytes_per_token * (kv_read + positions)
        return self.step_overhead_s + max(flops / (self.peak_flops * self.compute_efficiency),
                                          traffic / (self.hbm_bytes_per_s * self.bandwidth_efficiency))

    def plan_step_s(self, start_pos: np.ndarray, num_tokens: np.ndarray) -> float:
        """step_s without the split: a one-token entry at position s is a chunk of length 1 after s
        positions, so positions, pairs and KV read are one sum each over every entry (over
        Python lists: a batch is tens of entries, where numpy's per-call cost dominates)."""
        n, s = num_tokens.tolist(), start_pos.tolist()
        if not n:
            return 0.0
        m = self.model
        positions = sum(n)
        pairs = sum(k * (start + (k + 1) / 2) for k, start in zip(n, s))
        flops = 2 * m.params * positions + m.attention_flops_per_pair * pairs
        traffic = m.weight_bytes + m.kv_bytes_per_token * (sum(s) + positions)
        return self.step_overhead_s + max(flops / (self.peak_flops * self.compute_efficiency),
                                          traffic / (self.hbm_bytes_per_s * self.bandwidth_efficiency))

    def transfer_s(self, num_tokens: int) -> float:
        return num_tokens * self.model.kv_bytes_per_token / self.host_link_bytes_per_s

    def kv_pool_tokens(self, memory_fraction: float = 0.9) -> int:
        """Tokens of KV that fit in `memory_fraction` of device memory beside the weights
        (0.9: SGLang's default --mem-fraction-static is of this order; activations need the rest)."""
        return int((self.hbm_bytes * memory_fraction - self.model.weight_bytes) // self.model.kv_bytes_per_token)


# Efficiencies and overhead: assumptions, not measurements (no GPU run calibrated them yet).
# 0.6 of peak FLOP/s for prefill-sized GEMMs: FlashAttention-2 (Dao, 2023, arXiv:2307.08691)
# reports 50-73% of A100 peak for attention and ~72% model FLOPs utilisation end to end in training.
# 0.8 of HBM bandwidth for decode: memory-bound GEMV kernels typically reach 70-90% of peak
# (assumed). 2 ms per step: scheduler and batch building on the host with CUDA graphs (assumed).
COMPUTE_EFFICIENCY = 0.6
BANDWIDTH_EFFICIENCY = 0.8
STEP_OVERHEAD_S = 0.002
# Host link: vLLM's blog on its KV offloading connector measured ~50 GB/s one way on H100 over
# PCIe Gen5 x16 (copy engine and custom kernel alike; STYLE.md "Host tier").
HOST_LINK_BYTES_PER_S = 50e9

H100_LLAMA3_8B = Roofline(
    name="h100-llama3-8b",
    description="roofline of Llama-3-8B (bf16) on one H100 SXM5 80 GB from published figures; not measured",
    model=LLAMA3_8B,
    # NVIDIA H100 Tensor Core GPU datasheet, SXM5: BF16 1,979 TFLOPS with sparsity -> 989.4 dense;
    # GPU memory 80 GB HBM3 at 3.35 TB/s.
    peak_flops=989.4e12, hbm_bytes_per_s=3.35e12, hbm_bytes=80e9,
    host_link_bytes_per_s=HOST_LINK_BYTES_PER_S, compute_efficiency=COMPUTE_EFFICIENCY,
    bandwidth_efficiency=BANDWIDTH_EFFICIENCY, step_overhead_s=STEP_OVERHEAD_S)

H200_LLAMA3_8B = Roofline(
    name="h200-llama3-8b",
    description="roofline of Llama-3-8B (bf16) on one H200 SXM 141 GB from published figures; not measured",
    model=LLAMA3_8B,
    # NVIDIA H200 Tensor Core GPU datasheet, SXM: BF16 1,979 TFLOPS with sparsity -> 989.4 dense (the
    # H100's compute); GPU memory 141 GB HBM3e at 4.8 TB/s.
    peak_flops=989.4e12, hbm_bytes_per_s=4.8e12, hbm_bytes=141e9,
    host_link_bytes_per_s=HOST_LINK_BYTES_PER_S, compute_efficiency=COMPUTE_EFFICIENCY,
    bandwidth_efficiency=BANDWIDTH_EFFICIENCY, step_overhead_s=STEP_OVERHEAD_S)
