"""Llama-family decoder (Llama, Mistral, Qwen2) over the paged KV pool.

Plain tensors and functional ops rather than nn.Modules: the step loop calls this once per
step, and on a CPU the per-module dispatch overhead of 30 layers is a visible share of a
decode step. Q/K/V and gate/up projections are fused into one matmul each for the same reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from pythia.mem_cache.kv_pool import KVPool
from pythia.model_executor.forward_batch import ForwardBatch
from pythia.models.model_config import ModelConfig


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = sorted(p.name for p in path.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{path} has no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(path / name)))
    return state


class _Layer:
    __slots__ = ("input_norm", "qkv", "qkv_bias", "o", "post_norm", "gate_up", "down")


class LlamaForCausalLM:
    def __init__(self, config: ModelConfig, dtype: torch.dtype, device: torch.device) -> None:
        self.config = config
        self.dtype = dtype
        self.device = device
        state = _load_state_dict(config.path)

        def take(name: str) -> torch.Tensor:
            if name not in state:
                raise ValueError(f"checkpoint {config.path} lacks weight {name}")
            return state.pop(name).to(device=device, dtype=dtype)

        self.embed = take("model.embed_tokens.weight")
        self.layers: list[_Layer] = []
        for i in range(config.num_layers):
            p = f"model.layers.{i}."
            layer = _Layer()
            layer.input_norm = take(p + "input_layernorm.weight")
            layer.qkv = torch.cat([take(p + f"self_attn.{x}_proj.weight") for x in "qkv"]).contiguous()
            layer.qkv_bias = (torch.cat([take(p + f"self_attn.{x}_proj.bias") for x in "qkv"])
                              if config.attention_bias else None)
            layer.o = take(p + "self_attn.o_proj.weight")
            layer.post_norm = take(p + "post_attention_layernorm.weight")
            layer.gate_up = torch.cat([take(p + "mlp.gate_proj.weight"), take(p + "mlp.up_proj.weight")]).contiguous()
            layer.down = take(p + "mlp.down_proj.weight")
            self.layers.append(layer)
        self.norm = take("model.norm.weight")
        if config.tie_word_embeddings or "lm_head.weight" not in state:
            self.lm_head = self.embed
        else:
            self.lm_head = take("lm_head.weight")
        # Positions as transformers encodes them: angle = position * inv_freq, in fp32.
        max_pos = config.max_position_embeddings
        freqs = torch.arange(max_pos, dtype=torch.float32)[:, None] * config.rope_inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        self.rope_cos = (emb.cos() * config.rope_scaling).to(device=device, dtype=dtype)
        self.rope_sin = (emb.sin() * config.rope_scaling).to(device=device, dtype=dtype)

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.config.rms_norm_eps)
        return weight * xf.to(x.dtype)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def _attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pool: KVPool, layer: int,
                   batch: ForwardBatch) -> torch.Tensor:
        """q [T, H, D], k/v [T, KVH, D] (already written to the pool) -> [T, H, D]."""
        out = torch.empty_like(q)
        k_pool, v_pool = pool.k[layer], pool.v[layer]
        if batch.decode_rows.numel():
            # index_select on flat slots: several times faster than advanced indexing on CPU.
            b, width = batch.decode_slots.shape
            flat = batch.decode_slots.view(-1)
            qd = q.index_select(0, batch.decode_rows).unsqueeze(2)  # [B, H, 1, D]
            kd = k_pool.index_select(0, flat).view(b, width, *k_pool.shape[1:]).transpose(1, 2)  # [B, KVH, L, D]
            vd = v_pool.index_select(0, flat).view(b, width, *v_pool.shape[1:]).transpose(1, 2)
            od = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=batch.decode_mask, enable_gqa=True)
            out[batch.decode_rows] = od.squeeze(2)
        for span in batch.prefills:
            rows = slice(span.token_start, span.token_start + span.num_tokens)
            qp = q[rows].transpose(0, 1).unsqueeze(0)  # [1, H, n, D]
            if span.kv_slots is None:
                kp, vp = k[rows], v[rows]
                mask, causal = None, True
            else:
                kp, vp = k_pool.index_select(0, span.kv_slots), v_pool.index_select(0, span.kv_slots)
                mask, causal = span.causal_mask, False
            op = F.scaled_dot_product_attention(qp, kp.transpose(0, 1).unsqueeze(0), vp.transpose(0, 1).unsqueeze(0),
                                                attn_mask=mask, is_causal=causal, enable_gqa=True)
            out[rows] = op.squeeze(0).transpose(0, 1)
        return out

    @torch.inference_mode()
    def forward(self, batch: ForwardBatch, pool: KVPool) -> torch.Tensor:
        """Runs every computed position; returns logits [len(batch.logit_rows), vocab] in fp32."""
        cfg = self.config
        heads, kv_heads, dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q_size, kv_size = heads * dim, kv_heads * dim
        cos = self.rope_cos.index_select(0, batch.positions).unsqueeze(1)
        sin = self.rope_sin.index_select(0, batch.positions).unsqueeze(1)
        x = self.embed.index_select(0, batch.input_ids)
        for i, layer in enumerate(self.layers):
            h = self._rms_norm(x, layer.input_norm)
            qkv = F.linear(h, layer.qkv, layer.qkv_bias)
            q = qkv[:, :q_size].view(-1, heads, dim)
            k = qkv[:, q_size:q_size + kv_size].view(-1, kv_heads, dim)
            v = qkv[:, q_size + kv_size:].view(-1, kv_heads, dim)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            pool.k[i].index_copy_(0, batch.out_slots, k)
            pool.v[i].index_copy_(0, batch.out_slots, v)
            attn = self._attention(q, k, v, pool, i, batch)
            x = x + F.linear(attn.reshape(-1, q_size), layer.o)
            h = self._rms_norm(x, layer.post_norm)
            gate, up = F.linear(h, layer.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        hidden = self._rms_norm(x[batch.logit_rows], self.norm)
        return F.linear(hidden, self.lm_head).float()
