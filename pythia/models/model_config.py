"""What the engine needs to know about a Llama-family checkpoint, read from its config.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

# Architectures served by pythia.models.llama; Mistral and Qwen2 are Llama with a twist each
# (sliding window ignored within its length; biases on q/k/v).
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


@dataclass(frozen=True)
class ModelConfig:
    path: Path
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool
    # Inverse RoPE frequencies and the cos/sin scale, as transformers computes them for this
    # config's rope type, so that positions encode bit for bit as in the reference model.
    rope_inv_freq: torch.Tensor
    rope_scaling: float
    eos_token_ids: tuple[int, ...]
    bos_token_id: int | None

    @property
    def kv_bytes_per_token(self) -> int:
        """fp32 K and V of one token over all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * 4


def load_model_config(path: str | Path) -> ModelConfig:
    """Reads config.json (and generation_config.json for extra EOS ids); raises ValueError for
    an architecture this engine does not implement."""
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} has no config.json: not a Hugging Face checkpoint directory")
    raw = json.loads((path / "config.json").read_text())
    arch = (raw.get("architectures") or ["?"])[0]
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(f"architecture {arch} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    hf = AutoConfig.from_pretrained(path)
    rope = getattr(hf, "rope_parameters", None) or {"rope_type": "default"}
    rope_type = rope.get("rope_type", "default")
    if rope_type == "default":
        dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        base = rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0))
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        scaling = 1.0
    elif rope_type in ("linear", "llama3", "yarn", "longrope"):
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](hf, "cpu")
    else:
        raise ValueError(f"rope type {rope_type} is not supported")

    eos = raw.get("eos_token_id")
    gen_path = path / "generation_config.json"
    if gen_path.is_file():
        eos = json.loads(gen_path.read_text()).get("eos_token_id", eos)
    eos_ids = tuple(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    num_heads = hf.num_attention_heads
    return ModelConfig(
        path=path,
        architecture=arch,
        vocab_size=hf.vocab_size,
        hidden_size=hf.hidden_size,
        intermediate_size=hf.intermediate_size,
        num_layers=hf.num_hidden_layers,
        num_heads=num_heads,
        num_kv_heads=getattr(hf, "num_key_value_heads", None) or num_heads,
        head_dim=getattr(hf, "head_dim", None) or hf.hidden_size // num_heads,
        rms_norm_eps=hf.rms_norm_eps,
        max_position_embeddings=hf.max_position_embeddings,
        tie_word_embeddings=bool(getattr(hf, "tie_word_embeddings", False)),
        attention_bias=arch == "Qwen2ForCausalLM" or bool(getattr(hf, "attention_bias", False)),
        rope_inv_freq=inv_freq.float(),
        rope_scaling=float(scaling),
        eos_token_ids=tuple(int(e) for e in eos_ids),
        bos_token_id=raw.get("bos_token_id"),
    )
