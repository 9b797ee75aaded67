"""The openai client against a live server."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


MODEL = "SmolLM2-135M-Instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_chat_answers_and_reports_usage(client):
    reply = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=20, temperature=0)
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streaming_matches_the_plain_reply(client):
    plain = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=20, temperature=0)
    stream = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=20, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_repeated_prompt_reports_cached_tokens(client):
    messages = [{"role": "system", "content": "You answer in one word. " * 8}, *QUESTION]
    client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4, temperature=0)
    again = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4, temperature=0)
    assert again.usage.prompt_tokens_details.cached_tokens >= 32


def test_completions_with_logprobs_and_n(client):
    reply = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=4, temperature=0,
                                      logprobs=2, n=2)
    assert len(reply.choices) == 2
    assert reply.choices[0].text == reply.choices[1].text  # greedy: both samples agree
    assert len(reply.choices[0].logprobs.token_logprobs) == 4
    assert all(lp <= 0 for lp in reply.choices[0].logprobs.token_logprobs)


def test_completions_streaming(client):
    plain = client.completions.create(model=MODEL, prompt="One, two, three,", max_tokens=6, temperature=0)
    parts = [c.choices[0].text for c in client.completions.create(model=MODEL, prompt="One, two, three,",
                                                                  max_tokens=6, temperature=0, stream=True)
             if c.choices]
    assert "".join(parts) == plain.choices[0].text


def test_json_schema_response_format(client):
    import json

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reply = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=30, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
    assert isinstance(json.loads(reply.choices[0].message.content)["city"], str)


def test_seeded_sampling_is_reproducible(client):
    kwargs = dict(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=1.0, seed=1234)
    assert client.completions.create(**kwargs).choices[0].text == client.completions.create(**kwargs).choices[0].text


def test_unknown_model_is_rejected(client):
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.chat.completions.create(model="gpt-9", messages=QUESTION, max_tokens=2)


def test_bad_parameter_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2, temperature=-1)


def test_workflow_metadata_in_extra_body_reaches_the_engine(client, server):
    before = server.stats()["workflow_jobs_seen"]
    client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2,
                                   extra_body={"workflow": {"type": "qa", "id": "job-openai-1", "agent": "asker"}})
    assert server.stats()["workflow_jobs_seen"] == before + 1


def test_a_model_is_retrieved_by_id(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    name = client.models.list().data[0].id
    assert client.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
