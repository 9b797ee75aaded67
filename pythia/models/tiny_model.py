"""A small random Llama for benchmarks and tests: built once, offline, and cached.

Its weights are random (its text is noise), but its cost profile is a real model's: sized so
that on a 2-core CPU a step costs a few milliseconds and prefill dominates, which makes
scheduling and caching effects visible quickly. The tokenizer is a byte-level BPE trained here
on generated text, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from pythia.models.default_model import cache_dir

VERSION = "1"
VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _training_text() -> list[str]:
    import numpy as np

    rng = np.random.default_rng(0)
    words = ["agent", "plan", "code", "review", "test", "tool", "call", "result", "file", "function", "error",
             "the", "a", "of", "to", "and", "in", "is", "for", "with", "return", "class", "def", "import", "value"]
    return [" ".join(rng.choice(words, 40)) + f" {i} {i * 7 % 1000}." for i in range(4000)]


def _build(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_training_text(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB_SIZE, hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
                         num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=8192,
                         eos_token_id=fast.eos_token_id, bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    (out / "pythia_tiny.json").write_text(json.dumps({"version": VERSION}))


def tiny_model_path() -> Path:
    """Directory of the tiny model, building it on first use (a few seconds)."""
    target = cache_dir() / f"tiny-llama-v{VERSION}"
    if (target / "pythia_tiny.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=target.parent))
    try:
        _build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "pythia_tiny.json").is_file():  # lost a race to a complete build: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(tiny_model_path())
