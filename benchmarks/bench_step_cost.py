"""Decode step time against batch size and context length, on the engine in process (no HTTP).

    python -m benchmarks.bench_step_cost [--model tiny|default|PATH] [--batches 1,2,4,8,16,32]
                                         [--contexts 200,1600] [--steps 30]

For each (context, batch): `batch` requests of `context` random tokens decode `steps` tokens each
(greedy, EOS ignored); the median time of the last `steps` - 10 decode steps is reported, with the
time per request. It says whether batching is nearly free on this machine (a GPU's regime, where
admission order decides queueing) or each request adds its own cost (processor sharing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateRequest
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_step_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, default (SmolLM2-135M) or a model directory")
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--contexts", default="200,1600")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model_path = None
    if args.model == "tiny":
        from pythia.models.tiny_model import tiny_model_path

        model_path = str(tiny_model_path())
    elif args.model != "default":
        model_path = args.model
    batches = [int(b) for b in args.batches.split(",")]
    contexts = [int(c) for c in args.contexts.split(",")]
    engine = Engine(ServerArgs(model_path=model_path, max_total_tokens=max(batches) * (max(contexts) + 64) + 256,
                               chunked_prefill_size=4096, max_running_requests=max(batches)))
    rng = np.random.default_rng(0)
    vocab = engine.model_config.vocab_size
    params = SamplingParams(max_new_tokens=args.steps + 10, temperature=0, ignore_eos=True)
    print(f"model {args.model}: decode step (median of the last {args.steps} steps)")
    for context in contexts:
        for batch in batches:
            engine.flush_cache()
            for i in range(batch):
                prompt = rng.integers(100, vocab, context).tolist()
                assert engine.add_request(GenerateRequest(rid=f"c{context}-b{batch}-{i}", input_ids=prompt,
                                                          params=params)) is None
            times = []
            while engine.has_work():
                t0 = time.perf_counter()
                engine.step()
                times.append(time.perf_counter() - t0)
            step_ms = 1000 * statistics.median(times[-args.steps:])
            print(f"context {context:5d} batch {batch:3d}: {step_ms:7.2f} ms/step, {step_ms / batch:6.2f} ms per request",
                  flush=True)


if __name__ == "__main__":
    main()
