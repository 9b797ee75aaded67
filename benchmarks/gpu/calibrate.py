"""Prefill and decode step times of a Llama-3.1-8B-shaped random-weight model, in plain torch.

    python -m benchmarks.gpu.calibrate --out benchmarks/gpu/profiles/h200-llama3-8b.jsonl
    python -m pythia.sim.fit_cost benchmarks/gpu/profiles/h200-llama3-8b.jsonl \\
        --out pythia/sim/cost_models/h200_llama3_8b_measured.json --name h200-llama3-8b-measured \\
        --statistic median

For a lent GPU, as one script of a few minutes. The model is the real one's shape (32 layers,
hidden 4096, 32 query and 8 KV heads of 128, MLP 14336, vocabulary 128256, bf16) with random
weights: step time depends on shapes, not values. A prefill step runs `batch` prompts of `len`
tokens through every layer with causal attention; a decode step runs one token of each of
`batch` requests against a KV cache of `context` tokens. Logits are computed for each
request's last position only, as a serving engine samples there. Each shape is timed
`--repeats` times after a warm-up, with the device synchronised around every step.

It writes `benchmarks.bench_step_cost --out` lines (kind, lens or contexts, median `step_s`,
least `step_min_s`), so the simulator fits it with the same command as the CPU measurements
and loads the result as a cost model by its name.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int


SHAPES = {
    # meta-llama/Llama-3.1-8B config.json
    "llama3-8b": Shape(layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, intermediate=14336, vocab=128256),
    # a few layers of a small model: the CPU test of this script
    "test-tiny": Shape(layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=256),
}


class Layer(torch.nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.s = s
        self.norm1 = torch.nn.RMSNorm(s.hidden)
        self.qkv = torch.nn.Linear(s.hidden, (s.heads + 2 * s.kv_heads) * s.head_dim, bias=False)
        self.o = torch.nn.Linear(s.heads * s.head_dim, s.hidden, bias=False)
        self.norm2 = torch.nn.RMSNorm(s.hidden)
        self.gate_up = torch.nn.Linear(s.hidden, 2 * s.intermediate, bias=False)
        self.down = torch.nn.Linear(s.intermediate, s.hidden, bias=False)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """x: [batch, tokens, hidden]. With a cache ([batch, kv_heads, context + 1, head_dim] each),
        one new token per request attends to the cache, its own K and V written in the last slot."""
        s, (b, n, _) = self.s, x.shape
        q, k, v = self.qkv(self.norm1(x)).split([s.heads * s.head_dim, s.kv_heads * s.head_dim,
                                                s.kv_heads * s.head_dim], dim=-1)
        q = q.view(b, n, s.heads, s.head_dim).transpose(1, 2)
        k = k.view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        v = v.view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        if cache is None:
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            k_cache, v_cache = cache
            k_cache[:, :, -1:] = k
            v_cache[:, :, -1:] = v
            attn = F.scaled_dot_product_attention(q, k_cache, v_cache, enable_gqa=True)
        x = x + self.o(attn.transpose(1, 2).reshape(b, n, s.heads * s.head_dim))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Model(torch.nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(Layer(s) for _ in range(s.layers))
        self.embed = torch.nn.Embedding(s.vocab, s.hidden)
        self.norm = torch.nn.RMSNorm(s.hidden)
        self.lm_head = torch.nn.Linear(s.hidden, s.vocab, bias=False)

    def forward(self, ids: torch.Tensor, caches: list | None = None) -> torch.Tensor:
        x = self.embed(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, caches[i] if caches is not None else None)
        return self.lm_head(self.norm(x[:, -1]))  # logits where each request samples


def timed(step, device: torch.device, repeats: int) -> list[float]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up: kernel selection, allocator
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="llama3-8b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--prefill-lens", default="128,512,1024,2048,4096,8192")
    parser.add_argument("--prefill-batches", default="1,2,4")
    parser.add_argument("--decode-contexts", default="512,2048,8192,32768")
    parser.add_argument("--decode-batches", default="1,8,32,64,128")
    parser.add_argument("--max-prefill-tokens", type=int, default=16384, help="skip prefill shapes above this")
    parser.add_argument("--max-kv-tokens", type=int, default=400_000,
                        help="skip decode shapes whose KV cache is larger (8B: 128 KiB a token)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device, dtype, shape = torch.device(args.device), getattr(torch, args.dtype), SHAPES[args.shape]
    torch.manual_seed(0)
    with torch.device(device):
        model = Model(shape).to(dtype).eval()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    base = {"model": f"{args.shape}-shaped random weights ({args.dtype})", "device": name, "measured_at": stamp,
            "source": f"a {args.shape}-shaped random-weight model in plain torch on {name}"}
    rows = []
    ints = lambda text: [int(v) for v in text.split(",") if v]  # noqa: E731
    with torch.inference_mode():
        for length in ints(args.prefill_lens):
            for batch in ints(args.prefill_batches):
                if length * batch > args.max_prefill_tokens:
                    continue
                ids = torch.randint(0, shape.vocab, (batch, length), device=device)
                times = timed(lambda: model(ids), device, args.repeats)
                rows.append({**base, "kind": "prefill", "lens": [length] * batch,
                             "step_s": statistics.median(times), "step_min_s": min(times)})
                print(f"prefill {batch} x {length}: {1000 * rows[-1]['step_s']:.2f} ms", flush=True)
        for context in ints(args.decode_contexts):
            for batch in ints(args.decode_batches):
                if context * batch > args.max_kv_tokens:
                    continue
                kv = (batch, shape.kv_heads, context + 1, shape.head_dim)
                caches = [(torch.randn(kv, device=device, dtype=dtype), torch.randn(kv, device=device, dtype=dtype))
                          for _ in range(shape.layers)]
                ids = torch.randint(0, shape.vocab, (batch, 1), device=device)
                times = timed(lambda: model(ids, caches), device, args.repeats)
                del caches
                rows.append({**base, "kind": "decode", "contexts": [context + 1] * batch,
                             "step_s": statistics.median(times), "step_min_s": min(times)})
                print(f"decode {batch} x {context}: {1000 * rows[-1]['step_s']:.2f} ms", flush=True)
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} measurements to {args.out}")


if __name__ == "__main__":
    main()
