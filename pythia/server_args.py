"""Every setting of a Pythia server, with SGLang's flag names where the meaning is the same."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pythia import _core
from pythia.entrypoints.tool_parsers import TOOL_CALL_PARSERS


@dataclass
class ServerArgs:
    model_path: str | None = field(default=None, metadata={
        "help": "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json) of a "
                "Llama, Mistral or Qwen2 model. Default: the embedded SmolLM2-135M-Instruct."})
    served_model_name: str | None = field(default=None, metadata={
        "help": "Model name in the OpenAI API and /get_model_info. Default: the model path."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on."})
    port: int = field(default=30000, metadata={"help": "HTTP port."})
    api_key: str | None = field(default=None, metadata={
        "help": "If set, every route but /health needs 'Authorization: Bearer <key>' (401 otherwise)."})
    device: str = field(default="auto", metadata={"help": "torch device: auto (cuda if available, else cpu), cpu, cuda."})
    dtype: str = field(default="auto", metadata={
        "help": "Weights and KV dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16."})
    page_size: int = field(default=16, metadata={"core": "page_size", "help": "Tokens per KV page."})
    max_total_tokens: int = field(default=32768, metadata={
        "help": "KV pool size in tokens (whole pages of --page-size)."})
    chunked_prefill_size: int = field(default=512, metadata={"core": "max_batch_tokens", 
        "help": "Tokens computed per step (prefill chunks and decodes together)."})
    max_running_requests: int = field(default=64, metadata={"core": "max_running_requests", "help": "Most requests running at once."})
    context_length: int | None = field(default=None, metadata={
        "help": "Longest prompt + output. Default: the model's max_position_embeddings."})
    schedule_policy: str = field(default="lpm", metadata={"core": "schedule_policy", 
        "help": "Request order: " + ", ".join(_core.schedule_policy_names()) + "."})
    eviction_policy: str = field(default="lru", metadata={"core": "eviction_policy", 
        "help": "Prefix-cache eviction: " + ", ".join(_core.eviction_policy_names()) + "."})
    admission_policy: str = field(default="ratio", metadata={"core": "admission_policy", 
        "help": "Output KV reserved at admission: ratio (SGLang's new_token_ratio) or pythia (P99 predicted "
                "output of the request's agent)."})
    aging_tokens_per_step: float = field(default=1.0, metadata={"core": "aging_tokens_per_step", 
        "help": "pythia ordering: predicted work forgiven per scheduler step a request waits (starvation bound)."})
    future_work_weight: float = field(default=0.0, metadata={"core": "future_work_weight", 
        "help": "pythia ordering: weight of the job's predicted work after this call against the call's own cost "
                "(uncached prompt plus predicted output)."})
    unblock_bonus_tokens: float = field(default=512.0, metadata={"core": "unblock_bonus_tokens", 
        "help": "pythia ordering: work forgiven to a request whose completion unblocks its job's next agent."})
    max_job_hold_s: float = field(default=300.0, metadata={"core": "max_job_hold_s", 
        "help": "pythia admission: longest a workflow job's first call waits for room beside the contexts of "
                "live jobs while other work runs (the working-set gate); 0 turns the gate off."})
    long_context_tokens: int = field(default=4096, metadata={"core": "long_context_tokens",
        "help": "Long-context isolation: a request whose prompt has at least this many tokens is long."})
    max_long_prefill_tokens: int = field(default=0, metadata={"core": "max_long_prefill_tokens",
        "help": "Long-context isolation: long requests' prefill chunks together get at most this many tokens "
                "of a step, so that long prompts do not starve short calls; 0: no cap."})
    job_idle_timeout_s: float = field(default=300.0, metadata={
        "help": "A workflow job idle this long (and past its predicted dead time) is ended and forgotten, for "
                "clients that never call POST /v1/workflows/jobs/{id}/end; a later call starts a new job."})
    max_queued_requests: int = field(default=512, metadata={
        "help": "Most requests in the engine at once (running and waiting, SGLang's flag); beyond it a request "
                "gets 503 with Retry-After, for clients to back off instead of waiting minutes."})
    max_request_bytes: int = field(default=32 * 1024 * 1024, metadata={
        "help": "Largest request body; a larger one is refused with 413 before it is read."})
    max_n: int = field(default=64, metadata={"help": "Most samples per request (n)."})
    max_stop_sequences: int = field(default=64, metadata={
        "help": "Most stop strings, stop patterns and stop token ids of one request, together."})
    max_engine_restarts: int = field(default=3, metadata={
        "help": "Most restarts of a crashed engine process within 10 minutes; past it the server stops "
                "serving and /health fails. 0: never restart."})
    shutdown_timeout_s: float = field(default=25.0, metadata={
        "help": "On SIGTERM, how long requests in flight may run on while new ones get 503; the rest then "
                "end with an error."})
    tool_call_parser: str = field(default="qwen25", metadata={
        "help": "How the model writes tool calls, for tools on /v1/chat/completions: "
                + ", ".join(TOOL_CALL_PARSERS) + " (SGLang's names). The default, qwen25 (Hermes-style "
                "<tool_call> blocks), is also what the server teaches a model whose chat template does "
                "not render tools, SmolLM2 included."})
    enable_hierarchical_cache: bool = field(default=False, metadata={
        "help": "A host-memory KV tier below the device pool (SGLang's HiCache): evicted or backed-up pages "
                "keep a copy in host memory, and a prompt whose prefix is there is loaded instead of recomputed."})
    hicache_ratio: float = field(default=2.0, metadata={
        "help": "With --enable-hierarchical-cache: host pool size as a multiple of the device pool."})
    hicache_size: int = field(default=0, metadata={
        "help": "With --enable-hierarchical-cache: host pool size in GB; overrides --hicache-ratio when > 0."})
    hicache_write_policy: str = field(default="write_through", metadata={"core": "host_write_policy",
        "help": "When a device page gets a host copy: " + ", ".join(_core.host_write_policy_names())
                + " (write_through: when cached; write_through_selective: on its second hit; write_back: "
                "when evicted)."})
    hicache_io_backend: str = field(default="kernel", metadata={
        "help": "How pages are copied between the tiers: kernel (Pythia's page gather/scatter, all layers in "
                "one call; CUDA kernels on a GPU) or direct (per-layer torch copies)."})
    hicache_policy: str = field(default="pythia", metadata={"core": "host_policy",
        "help": "What moves when: lru (HiCache: host copies dropped least recently used first; evicted pages "
                "without a copy are lost unless --hicache-write-policy write_back) or pythia (every eviction "
                "writes to host unless the profiler predicts no reuse; host copies dropped farthest predicted "
                "next use first, dead jobs' first)."})
    hicache_prefetch_s: float = field(default=1.0, metadata={"core": "host_prefetch_s",
        "help": "With --hicache-policy pythia: a paused job's context in host memory is loaded back into free "
                "device pages once its next call is predicted within this many seconds; 0: no prefetch."})
    log_level: str = field(default="info", metadata={"help": "Logging level."})
    step_log: str | None = field(default=None, metadata={
        "help": "Append one JSON line per engine step to this file: the batch's prefill chunks and decode "
                "contexts, and the seconds the step took (what `python -m pythia.sim.fit_cost --step-logs` "
                "fits a simulator cost model to)."})

    @classmethod
    def add_cli_args(cls, parser: argparse.ArgumentParser) -> None:
        for f in dataclasses.fields(cls):
            kwargs: dict[str, Any] = {"help": f.metadata["help"], "default": f.default}
            if f.type == "bool":
                parser.add_argument("--" + f.name.replace("_", "-"), action="store_true", **kwargs)
                continue
            if f.type in ("int", "int | None"):
                kwargs["type"] = int
            elif f.type == "float":
                kwargs["type"] = float
            choices = {"schedule_policy": _core.schedule_policy_names(),
                       "eviction_policy": _core.eviction_policy_names(),
                       "admission_policy": _core.admission_policy_names(),
                       "hicache_write_policy": _core.host_write_policy_names(),
                       "hicache_policy": _core.host_policy_names(),
                       "hicache_io_backend": list(HICACHE_IO_BACKENDS)}.get(f.name)
            if choices:
                kwargs["choices"] = choices
            parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> ServerArgs:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def num_host_pages(self, kv_bytes_per_token: int | None = None) -> int:
        """Pages of the host KV tier (0 without one). --hicache-size needs the model's KV bytes per
        token to be turned into pages; --hicache-ratio does not."""
        if not self.enable_hierarchical_cache:
            return 0
        if self.hicache_size > 0:
            if not kv_bytes_per_token:
                return 1  # a placeholder for validation before the model is known
            return self.hicache_size * 2**30 // (kv_bytes_per_token * self.page_size)
        return int(self.hicache_ratio * (self.max_total_tokens // self.page_size))

    def scheduler_config(self, kv_bytes_per_token: int | None = None) -> _core.SchedulerConfig:
        """The scheduler core's settings: the one mapping from flags to the core's fields (each
        field's `core` metadata), validated by the core itself. ValueError names the flag."""
        config = _core.SchedulerConfig()
        values = {f.metadata["core"]: (f.name, getattr(self, f.name))
                  for f in dataclasses.fields(self) if "core" in f.metadata}
        # The pool is sized in tokens on the command line, in pages in the core.
        pages = self.max_total_tokens // self.page_size if self.page_size > 0 else 0
        values["num_device_pages"] = ("max_total_tokens", pages)
        values["num_host_pages"] = ("hicache_ratio", self.num_host_pages(kv_bytes_per_token))
        for name, (flag, value) in values.items():
            try:
                setattr(config, name, value)
            except TypeError:  # out of the core's integer range, or of the wrong type
                raise ValueError(f"--{flag.replace('_', '-')}: {getattr(self, flag)!r} is out of range") from None
        try:
            config.validate()
        except ValueError as e:
            raise ValueError(_flag_message(str(e))) from None
        return config

    def validate(self) -> None:
        """Raises ValueError naming the first bad flag; the server reports it at startup."""
        if self.port <= 0:
            raise ValueError("--port must be positive")
        if not self.job_idle_timeout_s > 0:
            raise ValueError("--job-idle-timeout-s must be positive")
        for name in ("max_queued_requests", "max_request_bytes", "max_n", "max_stop_sequences"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.max_engine_restarts < 0:
            raise ValueError("--max-engine-restarts must not be negative")
        _validate_hicache(self)
        if not 0 <= self.shutdown_timeout_s < float("inf"):
            raise ValueError("--shutdown-timeout-s must be a non-negative number of seconds")
        if self.tool_call_parser not in TOOL_CALL_PARSERS:
            raise ValueError(f"--tool-call-parser must be one of {', '.join(TOOL_CALL_PARSERS)}, "
                             f"got {self.tool_call_parser!r}")
        self.scheduler_config()


HICACHE_IO_BACKENDS = ("kernel", "direct")


def _validate_hicache(args: ServerArgs) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ServerArgs) if f.name.startswith("hicache_")}
    if not args.enable_hierarchical_cache:
        changed = [name for name, default in defaults.items() if getattr(args, name) != default]
        if changed:
            raise ValueError(f"--{changed[0].replace('_', '-')} needs --enable-hierarchical-cache")
        return
    if args.hicache_io_backend not in HICACHE_IO_BACKENDS:
        raise ValueError(f"--hicache-io-backend: unknown backend {args.hicache_io_backend!r} "
                         f"(known: {', '.join(HICACHE_IO_BACKENDS)})")
    if args.hicache_size < 0:
        raise ValueError("--hicache-size must not be negative")
    if args.hicache_size == 0 and not args.hicache_ratio > 0:
        raise ValueError("--hicache-ratio must be positive")
    if args.hicache_size == 0 and args.num_host_pages() < 1:
        raise ValueError("--hicache-ratio gives a host pool of less than one page")


def _flag_message(core_message: str) -> str:
    """Rewrites a core validation message, which starts with the core's field name, in terms of
    the flag that sets it."""
    field_name = core_message.split(":")[0].split(" ")[0]
    if field_name == "num_device_pages":
        return "--max-total-tokens must hold at least one page of --page-size tokens"
    for f in dataclasses.fields(ServerArgs):
        if f.metadata.get("core") == field_name:
            return "--" + f.name.replace("_", "-") + core_message[len(field_name):]
    return core_message
