"""The model side of a step: device, dtype, weights and the KV pool, one forward pass, sampling.

The engine keeps the request loop (what to run, when a request is done); the runner only turns a
step plan of the C++ core into logits and logits into tokens, so that another loop (a benchmark,
the host tier's transfers) can reuse it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pythia.mem_cache.kv_pool import KVPool
from pythia.model_executor.forward_batch import ForwardBatch, build_forward_batch
from pythia.model_executor.sampler import SampleRow, sample
from pythia.models.llama import LlamaForCausalLM
from pythia.models.model_config import load_model_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelRunner:
    def __init__(self, model_path: Path, device: str, dtype: str, num_pages: int, page_size: int) -> None:
        self.init_device(device, dtype)
        self.init_model(model_path)
        self.init_kv_pool(num_pages, page_size)

    def init_device(self, device: str, dtype: str) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype == "auto":
            # bf16 matmuls are several times slower than fp32 on these CPUs.
            self.dtype = torch.float32 if self.device.type == "cpu" else torch.bfloat16
        else:
            self.dtype = DTYPES[dtype]

    def init_model(self, model_path: Path) -> None:
        self.model_path = model_path
        self.model_config = load_model_config(model_path)
        self.model = LlamaForCausalLM(self.model_config, self.dtype, self.device)

    def init_kv_pool(self, num_pages: int, page_size: int) -> None:
        c = self.model_config
        self.page_size = page_size
        self.pool = KVPool(c.num_layers, num_pages, page_size, c.num_kv_heads, c.head_dim, self.dtype, self.device)

    def prepare(self, plan: Any, extra_logit_rows: dict[int, np.ndarray] | None = None
                ) -> tuple[ForwardBatch, np.ndarray]:
        """The forward batch of a step plan, and where each entry's logit rows start (see
        build_forward_batch)."""
        return build_forward_batch(plan, self.page_size, self.device, extra_logit_rows)

    def forward(self, batch: ForwardBatch) -> torch.Tensor:
        """Runs the batch, writing its new K/V into the pool; returns the logits of its logit rows."""
        return self.model.forward(batch, self.pool)

    def sample(self, logits: torch.Tensor, rows: list[SampleRow]) -> torch.Tensor:
        """One token per row of `logits` (masked already where a grammar constrains it)."""
        return sample(logits, rows)
