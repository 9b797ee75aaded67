"""Engine throughput on SmolLM2-135M against transformers' generate, side by side in one run.

    python -m benchmarks.bench_engine [--repeats N] [--prompt-len 256] [--output-len 128]

Decode: B requests of `prompt-len` random tokens each generate exactly `output-len` tokens
(greedy, EOS ignored), B in 1, 8, 32; output tokens per second over the whole run, prefill
included, for Pythia's engine (in process, no HTTP) and for `model.generate` on the same
weights, same threads, same prompts. Prefill: 8 prompts, one token each. The two alternate
over repeats; medians are reported. The prefix cache is flushed between runs, so no run
reuses an earlier run's prompts.
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


def run_pythia(engine: Engine, prompts: list[list[int]], output_len: int) -> float:
    engine.flush_cache()
    params = SamplingParams(max_new_tokens=output_len, temperature=0, ignore_eos=True)
    t0 = time.perf_counter()
    for i, prompt in enumerate(prompts):
        error = engine.add_request(GenerateRequest(rid=f"bench-{t0}-{i}", input_ids=prompt, params=params))
        assert error is None, error.error
    while engine.has_work():
        engine.step()
    return time.perf_counter() - t0


def run_hf(model, prompts: list[list[int]], output_len: int) -> float:
    ids = torch.tensor(prompts)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=output_len,
                             min_new_tokens=output_len, do_sample=False, pad_token_id=0)
    assert out.shape[1] == ids.shape[1] + output_len
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--batches", default="1,8,32")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from transformers import AutoModelForCausalLM

    engine = Engine(ServerArgs(max_total_tokens=32768, chunked_prefill_size=2048, max_running_requests=64))
    hf = AutoModelForCausalLM.from_pretrained(engine.model_path, dtype=torch.float32).eval()
    rng = np.random.default_rng(0)
    vocab = engine.model_config.vocab_size

    def prompts(n: int) -> list[list[int]]:
        return rng.integers(100, vocab, (n, args.prompt_len)).tolist()

    results: dict[str, tuple[float, float]] = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        ours, theirs = [], []
        for _ in range(args.repeats):
            batch_prompts = prompts(batch)
            ours.append(batch * args.output_len / run_pythia(engine, batch_prompts, args.output_len))
            theirs.append(batch * args.output_len / run_hf(hf, batch_prompts, args.output_len))
        results[f"b{batch}"] = (statistics.median(ours), statistics.median(theirs))
        print(f"decode batch {batch:2d}: pythia {results[f'b{batch}'][0]:7.1f} tok/s, "
              f"transformers {results[f'b{batch}'][1]:7.1f} tok/s, ratio {results[f'b{batch}'][0] / results[f'b{batch}'][1]:.2f}",
              flush=True)

    ours, theirs = [], []
    for _ in range(args.repeats):
        batch_prompts = prompts(8)
        ours.append(8 * args.prompt_len / run_pythia(engine, batch_prompts, 1))
        theirs.append(8 * args.prompt_len / run_hf(hf, batch_prompts, 1))
    results["prefill"] = (statistics.median(ours), statistics.median(theirs))
    print(f"prefill 8x{args.prompt_len}: pythia {results['prefill'][0]:7.1f} tok/s, "
          f"transformers {results['prefill'][1]:7.1f} tok/s, ratio {results['prefill'][0] / results['prefill'][1]:.2f}")
    engine.check_integrity()

    ratio = {k: v[0] / v[1] for k, v in results.items()}
    if "b8" in ratio:
        print(f"RESULT engine_speedup_b8_vs_hf {ratio['b8']:.2f}")
    if "b1" in ratio:
        print(f"RESULT engine_ratio_b1_vs_hf {ratio['b1']:.2f}")
    if "b32" in ratio:
        print(f"RESULT engine_speedup_b32_vs_hf {ratio['b32']:.2f}")
    print(f"RESULT engine_prefill_ratio_vs_hf {ratio['prefill']:.2f}")


if __name__ == "__main__":
    main()
