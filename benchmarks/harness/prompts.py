"""The token ids a replay sends for each call, shared by the HTTP replay and the simulator.

A call's prompt is its agent's system prompt followed by its body (see `workloads/model.py`):
the parent's body and output, the outputs of `also`, and fresh tokens derived from the seed,
or for a trace replay its shared blocks. Outputs come from whoever ran the call (the model over
HTTP, the simulator's stand-in), so bodies are built as calls finish.
"""

from __future__ import annotations

from benchmarks.workloads.model import Call, Job, Workload, tokens_for


class PromptBuilder:
    def __init__(self, workload: Workload, vocab_size: int) -> None:
        self.workload = workload
        # Skip the low ids, where tokenizers keep special tokens.
        self.low, self.high = max(1, vocab_size // 10), vocab_size
        self.system = {a: tokens_for(workload.seed, f"system/{a}", n, self.low, self.high)
                       for a, n in workload.agents.items()}

    def body(self, job: Job, call: Call, bodies: dict[str, list[int]], outputs: dict[str, list[int]]) -> list[int]:
        """`call`'s body, from the bodies and outputs of the job's calls that finished."""
        seed = self.workload.seed
        if call.blocks is not None:
            n = self.workload.block_tokens
            tokens = [t for h in call.blocks for t in tokens_for(0, f"block/{h}", n, self.low, self.high)]
            return tokens[:call.fresh_tokens]
        body: list[int] = []
        if call.parent:
            body += bodies[call.parent] + outputs[call.parent]
        for other in call.also:
            body += outputs[other]
        return body + tokens_for(seed, f"{job.id}/{call.id}", call.fresh_tokens, self.low, self.high)

    def prompt(self, call: Call, body: list[int]) -> list[int]:
        return self.system.get(call.agent, []) + body
