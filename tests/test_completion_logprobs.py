"""TextOffsets against the plain definition (the length of the decoded prefix before each token),
with the real tokenizer, on text whose characters span several byte-level tokens."""

from __future__ import annotations

import pytest

from pythia.entrypoints.completion_logprobs import TextOffsets


@pytest.fixture(scope="module")
def tokenizer(default_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model)


@pytest.mark.parametrize("text", ["Hello world, this is a test.", "naïve café — 日本語のテキスト 🎉🎉 ok",
                                  "<|im_start|>user\nhi<|im_end|>"])
@pytest.mark.parametrize("skip_special_tokens", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_offsets_match_the_decoded_prefixes_whatever_the_chunking(tokenizer, text, skip_special_tokens, chunk):
    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    ids = tokenizer.encode(text)
    offsets = TextOffsets(decode, start=7)
    got = sum((offsets.extend(ids[i:i + chunk]) for i in range(0, len(ids), chunk)), [])
    # A token inside a multi-byte character points at that character's start.
    expected = [7 + len(decode(ids[:i]).rstrip("\ufffd")) for i in range(len(ids))]
    assert got == expected
    if not text.isascii():  # the case worth testing is there: several tokens inside one character
        assert len(set(got)) < len(got)
