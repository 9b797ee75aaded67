"""Turns one step plan of the C++ core into the tensors a forward pass needs."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np
import torch

from pythia.mem_cache.kv_pool import page_slots


@dataclass
class PrefillSpan:
    """One request computing more than one position this step."""

    token_start: int  # first row of this request in the step's token axis
    num_tokens: int
    start_pos: int  # position of its first computed token (earlier ones are cached)
    kv_slots: torch.Tensor | None  # slots of positions [0, start_pos + num_tokens); None if start_pos == 0
    causal_mask: torch.Tensor | None  # [num_tokens, start_pos + num_tokens] bool; None if start_pos == 0


@dataclass
class ForwardBatch:
    """Everything one forward pass reads, for a mix of decodes and prefill chunks."""

    input_ids: torch.Tensor  # [T] token ids of every computed position
    positions: torch.Tensor  # [T]
    out_slots: torch.Tensor  # [T] KV slot each computed token is written to
    decode_rows: torch.Tensor  # [B] rows of the single-position entries
    decode_slots: torch.Tensor  # [B, L] KV slots of each decode entry, padded
    decode_mask: torch.Tensor  # [B, 1, 1, L] True where a slot is real
    prefills: list[PrefillSpan]
    # Rows whose logits are needed: last rows of entries that sample, plus prompt rows
    # whose logprobs were asked for.
    logit_rows: torch.Tensor


def build_forward_batch(plan: Any, page_size: int, device: torch.device,
                        extra_logit_rows: dict[int, np.ndarray] | None = None) -> tuple[ForwardBatch, np.ndarray]:
    """Builds the batch for `plan` (the `_core.StepPlan` from Scheduler.schedule()).

    `extra_logit_rows` maps an entry index to offsets within its computed tokens whose logits
    are needed too (input logprobs). Returns the batch and, per entry, where its rows start in
    `logit_rows`: entry i's requested rows come first, then its sampled last row if it samples.
    """
    num_tokens = plan.num_tokens.astype(np.int64)
    start_pos = plan.start_pos.astype(np.int64)
    offsets = plan.page_table_offsets
    samples = plan.samples
    table = plan.page_table.astype(np.int64)
    token_start = np.concatenate([[0], np.cumsum(num_tokens)])
    total = int(token_start[-1])

    positions = np.empty(total, dtype=np.int64)
    out_slots = np.empty(total, dtype=np.int64)
    decode_entries, prefills = [], []
    logit_rows: list[int] = []
    logit_start = np.zeros(len(num_tokens) + 1, dtype=np.int64)
    for i in range(len(num_tokens)):
        s, n, p0 = int(token_start[i]), int(num_tokens[i]), int(start_pos[i])
        pages = table[offsets[i]:offsets[i + 1]]
        pos = np.arange(p0, p0 + n)
        positions[s:s + n] = pos
        out_slots[s:s + n] = page_slots(pages, pos, page_size)
        if n == 1:
            decode_entries.append(i)
        elif p0 == 0:
            prefills.append(PrefillSpan(s, n, 0, None, None))
        else:
            slots = page_slots(pages, np.arange(p0 + n), page_size)
            mask = np.arange(p0 + n)[None, :] <= pos[:, None]
            prefills.append(PrefillSpan(s, n, p0, torch.from_numpy(slots).to(device),
                                        torch.from_numpy(mask).to(device)))
        if extra_logit_rows and i in extra_logit_rows:
            logit_rows.extend(s + int(r) for r in extra_logit_rows[i])
        if samples[i]:
            logit_rows.append(s + n - 1)
        logit_start[i + 1] = len(logit_rows)

    if decode_entries:
        lengths = start_pos[decode_entries] + 1
        width = int(lengths.max())
        decode_slots = np.zeros((len(decode_entries), width), dtype=np.int64)
        for row, i in enumerate(decode_entries):
            pages = table[offsets[i]:offsets[i + 1]]
            decode_slots[row, :lengths[row]] = page_slots(pages, np.arange(lengths[row]), page_size)
        decode_mask = np.arange(width)[None, :] < lengths[:, None]
    else:
        decode_slots = np.zeros((0, 1), dtype=np.int64)
        decode_mask = np.zeros((0, 1), dtype=bool)

    batch = ForwardBatch(
        input_ids=torch.from_numpy(plan.input_ids.astype(np.int64)).to(device),
        positions=torch.from_numpy(positions).to(device),
        out_slots=torch.from_numpy(out_slots).to(device),
        decode_rows=torch.from_numpy(token_start[decode_entries]).to(device),
        decode_slots=torch.from_numpy(decode_slots).to(device),
        decode_mask=torch.from_numpy(decode_mask[:, None, None, :]).to(device),
        prefills=prefills,
        logit_rows=torch.tensor(logit_rows, dtype=torch.long, device=device),
    )
    return batch, logit_start
