"""Per-request sampling parameters, named and defaulted as SGLang names and defaults them."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

# Below this a temperature is greedy decoding, as in SGLang (dividing logits by ~0 overflows).
GREEDY_TEMPERATURE = 1e-6
SEED_RANGE = 2**64  # torch generators take 64-bit seeds; larger ones are folded into the range


@dataclass
class SamplingParams:
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: no top-k cut
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    stop_regex: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    no_stop_trim: bool = False
    n: int = 1
    seed: int | None = None
    regex: str | None = None
    json_schema: str | None = None
    ebnf: str | None = None
    # Added to the logits of these token ids before sampling (OpenAI's and SGLang's logit_bias).
    logit_bias: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SamplingParams:
        """Builds and validates; raises ValueError naming the offending field."""
        if raw is not None and not isinstance(raw, dict):
            raise ValueError(f"sampling_params must be a JSON object, got {type(raw).__name__}")
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        # Accepted for compatibility and deliberately ignored: they change nothing here.
        for ignored in ("dtype", "stream_interval", "custom_params", "sampling_seed"):
            raw.pop(ignored, None)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown sampling parameter(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw or raw[f.name] is None:
                continue
            values[f.name] = _coerce(f.name, raw[f.name])
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(what)

        need(self.max_new_tokens >= 0, f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        need(self.min_new_tokens >= 0, f"min_new_tokens must be >= 0, got {self.min_new_tokens}")
        need(self.min_new_tokens <= self.max_new_tokens,
             f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens ({self.max_new_tokens})")
        need(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        need(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        need(self.top_k == -1 or self.top_k >= 1, f"top_k must be -1 or >= 1, got {self.top_k}")
        need(0 <= self.min_p <= 1, f"min_p must be in [0, 1], got {self.min_p}")
        need(-2 <= self.frequency_penalty <= 2, f"frequency_penalty must be in [-2, 2], got {self.frequency_penalty}")
        need(-2 <= self.presence_penalty <= 2, f"presence_penalty must be in [-2, 2], got {self.presence_penalty}")
        need(0 < self.repetition_penalty <= 2, f"repetition_penalty must be in (0, 2], got {self.repetition_penalty}")
        need(self.n >= 1, f"n must be >= 1, got {self.n}")
        constraints = [c for c in (self.regex, self.json_schema, self.ebnf) if c is not None]
        need(len(constraints) <= 1, "only one of regex, json_schema and ebnf may be given")
        for pattern in self.stop_regex:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"stop_regex {pattern!r} is not a valid regular expression: {e}") from None

    def for_sample(self, k: int) -> SamplingParams:
        """The parameters of sample k of a request with n > 1. Every sample carrying the request's
        seed would draw the same tokens; each gets its own seed derived from (seed, k) instead, so
        the samples differ while the same seed gives the same set of samples again."""
        if self.seed is None or k == 0:  # sample 0 keeps the seed: n = 1 and the first of n agree
            return self
        return dataclasses.replace(self, seed=sample_seed(self.seed, k))

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE or self.top_k == 1

    @property
    def has_penalties(self) -> bool:
        return self.frequency_penalty != 0 or self.presence_penalty != 0 or self.repetition_penalty != 1


def sample_seed(seed: int, k: int) -> int:
    """A seed for sample k > 0 of a request seeded with `seed`: a hash, so that the seeds of
    neighbouring samples (or of requests seeded 1, 2, ...) do not give related streams."""
    digest = hashlib.blake2b(f"{seed}/{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _coerce(name: str, value: Any) -> Any:
    """Checks JSON types; ints where ints are meant (bool is not an int here)."""
    int_fields = {"max_new_tokens", "min_new_tokens", "top_k", "n", "seed"}
    float_fields = {"temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty"}
    bool_fields = {"ignore_eos", "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim"}
    if name in int_fields:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if name in float_fields:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise ValueError(f"{name} must be a finite number, got {value!r}") from None
        if not math.isfinite(number):  # JSON parsers accept NaN and Infinity
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return number
    if name in bool_fields:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if name in ("stop", "stop_regex"):
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ValueError(f"{name} must be a string or a list of strings, got {value!r}")
        return [s for s in value if s]
    if name == "stop_token_ids":
        if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            raise ValueError(f"stop_token_ids must be a list of integers, got {value!r}")
        return value
    if name == "logit_bias":
        return _logit_bias(value)
    if name == "json_schema" and isinstance(value, dict):
        import json

        return json.dumps(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _logit_bias(value: Any) -> dict[int, float]:
    """{token id (an int, or its decimal string as JSON keys are): bias in [-100, 100]}; the ids are
    checked against the vocabulary with the request (request_validation)."""
    if not isinstance(value, dict):
        raise ValueError(f"logit_bias must be an object mapping token ids to biases, got {value!r}")
    out: dict[int, float] = {}
    for key, bias in value.items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"logit_bias keys must be token ids, got {key!r}") from None
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise ValueError(f"logit_bias values must be numbers in [-100, 100], got {bias!r} for token {key}")
        out[token] = float(bias)
    return out
