"""Our Llama over the paged KV pool gives transformers' greedy tokens, token for token."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig
from transformers import LlamaForCausalLM as HFLlama

from pythia import _core
from pythia.mem_cache.kv_pool import KVPool
from pythia.model_executor.forward_batch import build_forward_batch
from pythia.models.llama import LlamaForCausalLM
from pythia.models.model_config import load_model_config


def greedy(path, prompts: dict[int, list[int]], max_new: int, page_size: int, batch_tokens: int,
           warm: list[int] | None = None) -> tuple[dict[int, list[int]], dict]:
    """Runs the prompts together through the core and our model; returns outputs and core stats."""
    config = load_model_config(path)
    model = LlamaForCausalLM(config, torch.float32, torch.device("cpu"))
    core_config = _core.SchedulerConfig()
    core_config.page_size, core_config.num_device_pages, core_config.max_batch_tokens = page_size, 512, batch_tokens
    sched = _core.Scheduler(core_config)
    pool = KVPool(config.num_layers, 512, page_size, config.num_kv_heads, config.head_dim, torch.float32,
                  torch.device("cpu"))
    outputs: dict[int, list[int]] = {rid: [] for rid in prompts}

    def run() -> None:
        while sched.stats().num_running + sched.stats().num_waiting:
            plan = sched.schedule()
            batch, logit_start = build_forward_batch(plan, page_size, torch.device("cpu"))
            logits = model.forward(batch, pool)
            tokens = np.zeros(len(plan.req_ids), np.int32)
            for i, rid in enumerate(plan.req_ids):
                if plan.samples[i]:
                    tokens[i] = int(logits[logit_start[i + 1] - 1].argmax())
                    outputs.setdefault(int(rid), []).append(int(tokens[i]))
            sched.update(plan.req_ids, tokens, np.zeros(len(tokens), bool))
            sched.check_integrity()

    if warm:
        sched.add_request(10_000, warm, 1)
        run()
    for rid, prompt in prompts.items():
        sched.add_request(rid, prompt, max_new)
    run()
    return outputs, sched.stats()


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    path = tmp_path_factory.mktemp("tiny-llama")
    HFLlama(config).eval().save_pretrained(path)
    return path


@pytest.mark.parametrize("page_size,batch_tokens", [(1, 7), (4, 16), (16, 512)])
def test_tiny_model_matches_transformers_with_chunking_and_cache(tiny_llama, page_size, batch_tokens):
    rng = np.random.default_rng(page_size)
    shared = rng.integers(0, 300, 40).tolist()
    prompts = {1: shared + [5, 6, 7], 2: rng.integers(0, 300, 9).tolist(), 3: shared + rng.integers(0, 300, 30).tolist()}
    outputs, stats = greedy(tiny_llama, prompts, 10, page_size, batch_tokens, warm=shared + [1])
    assert stats.cached_prompt_tokens > 0, "the warm-up request's prefix should be reused"
    hf = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    for rid, prompt in prompts.items():
        ref = hf.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False, min_new_tokens=10)[0, len(prompt):]
        assert outputs[rid] == ref.tolist(), f"request {rid}"


def test_smollm2_matches_transformers(default_model):
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    questions = ["What is the capital of France?", "Write a haiku about the sea.", "List three prime numbers."]
    prompts = {i: list(tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                     return_dict=True)["input_ids"])
               for i, q in enumerate(questions)}
    outputs, _ = greedy(default_model, prompts, 12, 16, 32)
    hf = AutoModelForCausalLM.from_pretrained(default_model).eval()
    for rid, prompt in prompts.items():
        # transformers stops at EOS; the loop here does not, so compare up to that point.
        ref = hf.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
        assert outputs[rid][:len(ref)] == ref, f"prompt {questions[rid]!r}"
    assert "Paris" in tokenizer.decode(outputs[0])
