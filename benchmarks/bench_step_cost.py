"""Step time against batch shape, on the engine in process (no HTTP): decode and prefill.

    python -m benchmarks.bench_step_cost [--model tiny|default|PATH] [--batches 1,2,4,8,16,32]
                                         [--contexts 200,1600] [--steps 30]
                                         [--prefill-lens 32,128,512] [--prefill-batches 1,2,4]
                                         [--out FILE.jsonl]

Decode: for each (context, batch), `batch` requests of `context` random tokens decode `steps`
tokens each (greedy, EOS ignored); the median time of the last `steps` decode steps is reported,
with the time per request. It says whether batching is nearly free on this machine (a GPU's
regime, where admission order decides queueing) or each request adds its own cost (processor
sharing).

Prefill: for each (length, batch) with length x batch within one step's token budget, `batch`
fresh prompts of `length` tokens are prefilled in one step (max_new_tokens 1, cache flushed, so
nothing is served from the cache); the median over --prefill-repeats is reported. With
--prefill-starts, each prompt's first START tokens are cached first, as a long prompt's later
chunks (and a multi-turn call's new turn) find them.

With --out, every measurement is also written as one JSON line (`kind`, the prefill chunk
lengths or decode contexts of the batch, the median `step_s` and the least `step_min_s`, which
on a shared machine is the step with the fewest other processes in its way, and the machine's
load average then): the data the simulator's `cpu-fitted` cost
model is fitted from (python -m pythia.sim.fit_cost).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time

import numpy as np
import torch

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateRequest
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs

PREFILL_BUDGET = 4096  # chunked_prefill_size of the measuring engine: the largest prefill batch


def decode_rows(engine: Engine, rng: np.random.Generator, contexts: list[int], batches: list[int],
                steps: int) -> list[dict]:
    vocab = engine.model_config.vocab_size
    params = SamplingParams(max_new_tokens=steps + 10, temperature=0, ignore_eos=True)
    rows = []
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
            step_s = statistics.median(times[-steps:])
            # The median step of the last `steps` decodes sees about this many tokens of context.
            seen = context + 10 + steps // 2
            rows.append({"kind": "decode", "contexts": [seen] * batch, "step_s": step_s,
                         "step_min_s": min(times[-steps:]), "load_avg_1m": os.getloadavg()[0]})
            print(f"decode context {context:5d} batch {batch:3d}: {1000 * step_s:7.2f} ms/step, "
                  f"{1000 * step_s / batch:6.2f} ms per request", flush=True)
    return rows


def prefill_rows(engine: Engine, rng: np.random.Generator, lengths: list[int], batches: list[int],
                 repeats: int, starts: tuple[int, ...] = (0,)) -> list[dict]:
    """For each (start, length, batch): `batch` prompts whose first `start` tokens are cached (each
    its own prefix, prefilled and finished beforehand), `length` new tokens each, in one step."""
    vocab = engine.model_config.vocab_size
    params = SamplingParams(max_new_tokens=1, temperature=0, ignore_eos=True)
    rows = []
    for start in starts:
        for length in lengths:
            for batch in batches:
                if length * batch > PREFILL_BUDGET:
                    continue
                times = []
                for r in range(repeats):
                    engine.flush_cache()
                    prompts = [rng.integers(100, vocab, start + length).tolist() for _ in range(batch)]
                    if start:
                        for i, prompt in enumerate(prompts):
                            engine.add_request(GenerateRequest(rid=f"s{start}-{r}-{i}", input_ids=prompt[:start],
                                                               params=params))
                        while engine.has_work():
                            engine.step()
                    for i, prompt in enumerate(prompts):
                        assert engine.add_request(GenerateRequest(rid=f"p{start}-{length}-b{batch}-{r}-{i}",
                                                                  input_ids=prompt, params=params)) is None
                    t0 = time.perf_counter()
                    engine.step()  # the whole batch fits the budget: one step prefills it all
                    times.append(time.perf_counter() - t0)
                    assert not engine.has_work()
                step_s = statistics.median(times)
                row = {"kind": "prefill", "lens": [length] * batch, "step_s": step_s, "step_min_s": min(times),
                       "load_avg_1m": os.getloadavg()[0]}
                if start:
                    # The cache serves whole pages: the chunk starts where the cached pages end.
                    cached = start // engine.args.page_size * engine.args.page_size
                    row["starts"] = [cached] * batch
                    row["lens"] = [start + length - cached] * batch
                rows.append(row)
                print(f"prefill length {length:5d} after {start:5d} cached, batch {batch:3d}: "
                      f"{1000 * step_s:7.2f} ms/step", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_step_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, default (SmolLM2-135M) or a model directory")
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--contexts", default="200,1600")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prefill-lens", default="", help="prefill chunk lengths to measure (none by default)")
    parser.add_argument("--prefill-batches", default="1")
    parser.add_argument("--prefill-starts", default="0", help="cached prefix lengths before each prefill chunk")
    parser.add_argument("--prefill-repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write every measurement as a JSON line here")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the engine process uses one per core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_path = None
    if args.model == "tiny":
        from pythia.models.tiny_model import tiny_model_path

        model_path = str(tiny_model_path())
    elif args.model != "default":
        model_path = args.model
    batches = [int(b) for b in args.batches.split(",") if b]
    contexts = [int(c) for c in args.contexts.split(",") if c]
    lengths = [int(n) for n in args.prefill_lens.split(",") if n]
    starts = [int(s) for s in args.prefill_starts.split(",") if s]
    pool = max([b * (c + args.steps + 64) for b in batches for c in contexts]
               + [PREFILL_BUDGET + max(starts, default=0) * max(int(b) for b in args.prefill_batches.split(","))]) + 256
    engine = Engine(ServerArgs(model_path=model_path, max_total_tokens=pool, chunked_prefill_size=PREFILL_BUDGET,
                               max_running_requests=max(batches + [int(b) for b in args.prefill_batches.split(",")])))
    rng = np.random.default_rng(0)
    print(f"model {args.model}: decode step (median of the last {args.steps} steps), prefill step "
          f"(median of {args.prefill_repeats})")
    rows = prefill_rows(engine, rng, lengths, [int(b) for b in args.prefill_batches.split(",")],
                        args.prefill_repeats, tuple(starts))
    rows += decode_rows(engine, rng, contexts, batches, args.steps)
    if args.out:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with open(args.out, "w") as f:
            for row in rows:
                f.write(json.dumps({"model": args.model, "threads": args.threads, "measured_at": stamp, **row}) + "\n")
        print(f"wrote {len(rows)} measurements to {args.out}")


if __name__ == "__main__":
    main()
