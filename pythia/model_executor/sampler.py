"""Turns a step's logits into tokens, one row per sampling request, with the row's own parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pythia.model_executor.sampling_params import SamplingParams


@dataclass
class SampleRow:
    """What the sampler needs of one request for one row of logits."""

    params: SamplingParams
    prompt_ids: list[int]
    output_ids: list[int]
    generator: torch.Generator | None  # set when the request has a seed
    banned_ids: list[int]  # EOS and stop ids while min_new_tokens is not reached


def apply_penalties(logits: torch.Tensor, row: SampleRow) -> None:
    """OpenAI frequency/presence penalties over the output; HF repetition penalty over prompt
    and output, as SGLang applies them."""
    p = row.params
    if row.output_ids and (p.frequency_penalty or p.presence_penalty):
        out = torch.tensor(row.output_ids, device=logits.device)
        counts = torch.bincount(out, minlength=logits.shape[-1])[: logits.shape[-1]].to(logits.dtype)
        logits -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)
    if p.repetition_penalty != 1:
        seen = torch.tensor(sorted(set(row.prompt_ids) | set(row.output_ids)), device=logits.device)
        picked = logits[seen]
        logits[seen] = torch.where(picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty)


def sample(logits: torch.Tensor, rows: list[SampleRow]) -> torch.Tensor:
    """logits [S, V] fp32 (modified in place; grammar masks already applied) -> token ids [S]."""
    vocab = logits.shape[-1]
    for i, row in enumerate(rows):
        if row.params.has_penalties:
            apply_penalties(logits[i], row)
        if row.params.logit_bias:
            ids = torch.tensor(list(row.params.logit_bias), device=logits.device)
            logits[i, ids] += torch.tensor(list(row.params.logit_bias.values()), dtype=logits.dtype,
                                           device=logits.device)
        banned = [t for t in row.banned_ids if 0 <= t < vocab]  # ids past the vocabulary cannot come anyway
        if banned:
            logits[i, banned] = float("-inf")
    # Extreme penalties overflow (a logit divided by 1e-300): keep every logit a number, so that a
    # softmax never sees inf - inf. -inf stays: it is how masks and bans exclude a token.
    torch.nan_to_num_(logits, nan=float("-inf"), posinf=torch.finfo(logits.dtype).max)

    tokens = logits.argmax(dim=-1)
    random_rows = [i for i, row in enumerate(rows) if not row.params.greedy]
    if not random_rows:
        return tokens
    idx = torch.tensor(random_rows, device=logits.device)
    temps = torch.tensor([rows[i].params.temperature for i in random_rows], device=logits.device)
    probs = torch.softmax(logits[idx] / temps[:, None], dim=-1)
    probs = _filter(probs, [rows[i].params for i in random_rows])
    # A row with no finite distribution left (every token masked or banned) keeps its argmax.
    valid = torch.isfinite(probs).all(dim=-1) & (probs.sum(dim=-1) > 0)
    for j, i in enumerate(random_rows):
        if valid[j]:
            tokens[i] = torch.multinomial(probs[j], 1, generator=rows[i].generator)[0]
    return tokens


def _filter(probs: torch.Tensor, params: list[SamplingParams]) -> torch.Tensor:
    """Applies top-k, top-p and min-p cuts (renormalized) where any row asks for them."""
    if all(p.top_k == -1 and p.top_p >= 1 and p.min_p <= 0 for p in params):
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    rank = torch.arange(probs.shape[-1], device=probs.device)[None, :]
    vocab = probs.shape[-1]
    top_k = torch.tensor([min(p.top_k, vocab) if p.top_k > 0 else vocab for p in params], device=probs.device)
    top_p = torch.tensor([p.top_p for p in params], device=probs.device)
    min_p = torch.tensor([p.min_p for p in params], device=probs.device)
    drop = rank >= top_k[:, None]
    drop |= (sorted_probs.cumsum(dim=-1) - sorted_probs) > top_p[:, None]
    drop |= sorted_probs < min_p[:, None] * sorted_probs[:, :1]
    drop[:, 0] = False  # the most likely token always survives
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    filtered = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return filtered / filtered.sum(dim=-1, keepdim=True)
