"""Regex / JSON-schema / EBNF constrained decoding with xgrammar.

xgrammar (from the MLC and SGLang teams) is the structured-generation backend SGLang and vLLM
default to: grammars compile once into token masks precomputed per automaton state, so a step
costs a bitmask fill per constrained request, and it runs on the CPU with the same API as on GPUs.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import xgrammar as xgr

from pythia.model_executor.sampling_params import SamplingParams


# xgrammar's C++ errors read "[00:01:42] /project/cpp/json_schema_converter.cc:4944: Unsupported type ...":
# the time, its build's source path and line, and for failed checks the check's own expression.
_LOG_PREFIX = re.compile(r"\[\d+:\d+:\d+(?:\.\d+)?\]\s*")
_SOURCE_LOCATION = re.compile(r"(?:[\w.-]*/)+[\w.-]+\.(?:cc|cpp|cxx|c|h|hpp|py):\d+:?\s*")
_CHECK_FAILED = re.compile(r"Check failed: \(.*?\) is false:?\s*")
MAX_GRAMMAR_ERROR_CHARS = 400  # the message may quote the whole schema back


def grammar_error_message(error: Exception) -> str:
    """What was wrong with a grammar, without the dependency's source paths, check expressions
    or stack frames, which mean nothing to a client."""
    text = str(error).split("Stack trace", 1)[0]
    for pattern in (_LOG_PREFIX, _SOURCE_LOCATION, _CHECK_FAILED):
        text = pattern.sub("", text)
    text = " ".join(text.split()) or type(error).__name__
    if len(text) > MAX_GRAMMAR_ERROR_CHARS:
        text = text[:MAX_GRAMMAR_ERROR_CHARS - 3] + "..."
    return text


class GrammarBackend:
    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._compiler: xgr.GrammarCompiler | None = None  # built on first use (~0.2 s)
        self._cache: dict[tuple[str, str], xgr.CompiledGrammar] = {}

    def matcher(self, params: SamplingParams) -> xgr.GrammarMatcher | None:
        """A fresh matcher for the request's constraint, None if unconstrained; ValueError if the
        constraint does not compile."""
        if params.regex is not None:
            key = ("regex", params.regex)
        elif params.json_schema is not None:
            key = ("json_schema", params.json_schema)
        elif params.ebnf is not None:
            key = ("ebnf", params.ebnf)
        else:
            return None
        if key not in self._cache:
            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(self._tokenizer, vocab_size=self._vocab_size)
                self._compiler = xgr.GrammarCompiler(info)
            compile_fn = {"regex": self._compiler.compile_regex,
                          "json_schema": self._compiler.compile_json_schema,
                          "ebnf": self._compiler.compile_grammar}[key[0]]
            try:
                self._cache[key] = compile_fn(key[1])
            except Exception as e:  # xgrammar raises several types for a bad grammar
                raise ValueError(f"invalid {key[0]}: {grammar_error_message(e)}") from None
        return xgr.GrammarMatcher(self._cache[key])

    def apply_mask(self, matchers: list[xgr.GrammarMatcher], logits: torch.Tensor) -> None:
        """Sets logits of tokens the grammars forbid to -inf; row i belongs to matchers[i]."""
        bitmask = xgr.allocate_token_bitmask(len(matchers), self._vocab_size)
        for i, m in enumerate(matchers):
            m.fill_next_token_bitmask(bitmask, i)
        xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device))
