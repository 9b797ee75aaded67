"""The token ids a replay sends for each call, shared by the HTTP replay and the simulator.

A call's prompt is its agent's system prompt followed by its body (see `workloads/model.py`):
the parent's body and output, the outputs of `also`, and fresh tokens derived from the seed,
or for a trace replay its shared blocks. Outputs come from whoever ran the call (the model over
HTTP, the simulator's stand-in), so bodies are built as calls finish. Bodies and prompts are int32
arrays: a GPU-scale session's prompts reach tens of thousands of tokens, and the simulator builds
hundreds of thousands of them.
"""

from __future__ import annotations

import numpy as np

from benchmarks.workloads.model import Call, Job, Workload, tokens_for

Tokens = np.ndarray  # int32 token ids


def ids(tokens: list[int]) -> Tokens:
    return np.asarray(tokens, dtype=np.int32)


class PromptBuilder:
    def __init__(self, workload: Workload, vocab_size: int) -> None:
        self.workload = workload
        # Skip the low ids, where tokenizers keep special tokens.
        self.low, self.high = max(1, vocab_size // 10), vocab_size
        self.system = {a: ids(tokens_for(workload.seed, f"system/{a}", n, self.low, self.high))
                       for a, n in workload.agents.items()}

    def body(self, job: Job, call: Call, bodies: dict[str, Tokens], outputs: dict[str, list[int]]) -> Tokens:
        """`call`'s body, from the bodies and outputs of the job's calls that finished."""
        seed = self.workload.seed
        if call.blocks is not None:
            n = self.workload.block_tokens
            blocks = [ids(tokens_for(0, f"block/{h}", n, self.low, self.high)) for h in call.blocks]
            return np.concatenate(blocks)[:call.fresh_tokens] if blocks else ids([])
        parts: list = []
        if call.parent:
            parts += [bodies[call.parent], outputs[call.parent]]
        parts += [outputs[other] for other in call.also]
        parts.append(tokens_for(seed, f"{job.id}/{call.id}", call.fresh_tokens, self.low, self.high))
        return np.concatenate([ids(p) for p in parts])

    def prompt(self, call: Call, body: Tokens) -> Tokens:
        system = self.system.get(call.agent)
        return body if system is None else np.concatenate([system, body])
