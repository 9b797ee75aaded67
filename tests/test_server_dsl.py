"""SGLang frontend-DSL programs against a live server through unmodified sgl.RuntimeEndpoint."""

from __future__ import annotations

import pytest
import sglang as sgl


@pytest.fixture(scope="module")
def backend(server):
    # SmolLM2 speaks ChatML; the DSL picks templates by model name and does not know SmolLM2.
    endpoint = sgl.RuntimeEndpoint(server.url, chat_template_name="chatml")
    sgl.set_default_backend(endpoint)
    yield endpoint


@sgl.function
def answer(s, question):
    s += sgl.system("You are a helpful assistant.")
    s += sgl.user(question)
    s += sgl.assistant(sgl.gen("answer", max_tokens=24, temperature=0))


def test_factual_answer_from_the_real_model(backend):
    state = answer.run(question="What is the capital of France?")
    assert "Paris" in state["answer"]
    meta = state.get_meta_info("answer")
    assert meta["prompt_tokens"] > 10 and meta["completion_tokens"] > 0


def test_multi_turn_chat_keeps_the_conversation(backend):
    @sgl.function
    def chat(s):
        s += sgl.system("You are a helpful assistant.")
        s += sgl.user("What is the capital of France?")
        s += sgl.assistant(sgl.gen("first", max_tokens=16, temperature=0))
        s += sgl.user("And of Italy?")
        s += sgl.assistant(sgl.gen("second", max_tokens=16, temperature=0))

    state = chat.run()
    messages = state.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert "Paris" in state["first"]
    assert "Rome" in state["second"]
    assert "<|im_end|>" not in state["second"], "the stop string is trimmed from the output"


def test_select_picks_the_likely_choice(backend):
    @sgl.function
    def pick(s):
        s += "The color of a clear daytime sky is " + sgl.select("color", ["blue", "green", "purple"])

    state = pick.run()
    assert state["color"] == "blue"
    meta = state.get_meta_info("color")
    assert len(meta["normalized_prompt_logprobs"]) == 3


def test_regex_constrained_gen_returns_digits(backend):
    @sgl.function
    def number(s):
        s += "Q: How many legs does a spider have?\nA: " + sgl.gen("n", regex=r"[0-9]{1,3}", max_tokens=5, temperature=0)

    out = number.run()["n"]
    assert out.isdigit(), out


def test_int_dtype_gen(backend):
    @sgl.function
    def count(s):
        s += sgl.user("How many days are in a week? Answer with a number.")
        s += sgl.assistant(sgl.gen("days", dtype=int, max_tokens=6, temperature=0))

    assert isinstance(int(count.run()["days"]), int)


def test_fork_join_runs_branches_concurrently(backend):
    @sgl.function
    def branches(s):
        s += "Here are two short facts about the sea.\n"
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += f"Fact {i + 1}:" + sgl.gen("fact", max_tokens=8, temperature=0, stop="\n")
        forks.join()
        s += "Summary:" + sgl.gen("summary", max_tokens=8, temperature=0)

    state = branches.run()
    assert len(state["fact"]) == 2
    assert all(isinstance(f, str) for f in state["fact"])
    assert isinstance(state["summary"], str)


def test_fork_join_concate_and_append(backend):
    @sgl.function
    def appended(s):
        s += "Numbers:"
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += f" {i}" + sgl.gen("x", max_tokens=2, temperature=0)
        forks.join(mode="concate_and_append")
        s += sgl.gen("rest", max_tokens=2, temperature=0)

    state = appended.run()
    assert state.error() is None
    assert state.text().startswith("Numbers: 0")


def test_streaming_yields_the_same_text_as_a_plain_run(backend):
    plain = answer.run(question="Name a fruit.")["answer"]
    state = answer.run(question="Name a fruit.", stream=True)
    pieces = list(state.text_iter("answer"))
    assert len(pieces) > 1
    assert "".join(pieces) == plain


def test_run_batch(backend):
    states = answer.run_batch([{"question": "What is 2+2?"}, {"question": "What is the capital of France?"}],
                              progress_bar=False)
    assert len(states) == 2
    assert "Paris" in states[1]["answer"]


def test_stop_string_is_trimmed(backend):
    @sgl.function
    def lines(s):
        s += "1. apple\n2. banana\n3." + sgl.gen("item", max_tokens=16, temperature=0, stop="\n")

    item = lines.run()["item"]
    assert "\n" not in item and item.strip()


def test_flush_cache_empties_the_prefix_cache(backend, server):
    answer.run(question="What is 1+1?")
    assert server.stats()["evictable_pages"] > 0
    sgl.flush_cache()  # the DSL raises on any answer but 200
    assert server.stats()["evictable_pages"] == 0
    assert "internal_states" in sgl.get_server_info()
