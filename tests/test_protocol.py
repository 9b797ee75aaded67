"""The request models refuse what the routes refuse, with one message naming the field and the
problem in words, and accept the bodies real clients send."""

from __future__ import annotations

import inspect
import json

import pytest

from pythia.entrypoints.errors import HTTPError
from pythia.entrypoints.protocol import errors, openai, sglang, workflow
from pythia.entrypoints.protocol.openai import ChatCompletionRequest, CompletionRequest
from pythia.entrypoints.protocol.sglang import GenerateRequestBody
from pythia.entrypoints.protocol.validation import check_body
from pythia.entrypoints.protocol.workflow import TopologyRequest

USER = [{"role": "user", "content": "hi"}]


def refusal(model, body) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        check_body(body, model)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize("model, body, param, message", [
    (GenerateRequestBody, {"text": "hi", "sampling_params": [1]}, "sampling_params",
     "sampling_params must be a JSON object, got [1]"),
    (GenerateRequestBody, {"text": []}, "text", "text must be a non-empty list"),
    (GenerateRequestBody, {"text": 42}, "text", "text must be a string or a list, got 42"),
    (GenerateRequestBody, {"text": ["a", 1]}, "text[1]", "text[1] must be a string, got 1"),
    (GenerateRequestBody, {}, None, "give exactly one of text and input_ids"),
    (GenerateRequestBody, {"text": "a", "input_ids": [1]}, None, "give exactly one of text and input_ids"),
    (GenerateRequestBody, {"input_ids": [1, -5]}, "input_ids[1]", "input_ids[1]: token ids are integers >= 0, got -5"),
    (GenerateRequestBody, {"input_ids": [[1], [2, "x"]]}, "input_ids[1][1]",
     "input_ids[1][1] must be an integer, got 'x'"),
    (GenerateRequestBody, {"input_ids": [True]}, "input_ids[0]", "input_ids[0] must be an integer or a list, got True"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"bogus": 1, "also": 2}}, "sampling_params",
     "sampling_params: unknown sampling parameter(s): also, bogus"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"max_new_tokens": "ten"}},
     "sampling_params.max_new_tokens", "sampling_params.max_new_tokens must be an integer, got 'ten'"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"max_new_tokens": 2.5}},
     "sampling_params.max_new_tokens", "sampling_params.max_new_tokens must be an integer, got 2.5"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"temperature": float("nan")}},
     "sampling_params.temperature", "sampling_params.temperature must be a finite number, got nan"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"top_p": 0}}, "sampling_params.top_p",
     "sampling_params.top_p must be > 0, got 0"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"logit_bias": {"7": 101}}}, "sampling_params.logit_bias.7",
     "sampling_params.logit_bias.7 must be <= 100, got 101"),
    (GenerateRequestBody, {"text": "hi", "sampling_params": {"logit_bias": {"x": 1}}}, "sampling_params.logit_bias.x",
     "sampling_params.logit_bias.x must match ^[0-9]+$"),
    (GenerateRequestBody, {"text": "hi", "stream": None}, "stream", "stream must be true or false, got None"),
    (GenerateRequestBody, {"text": "hi", "workflow": {"id": 7}}, "workflow.id", "workflow.id must be a string, got 7"),
    (GenerateRequestBody, {"text": "hi", "workflow": {"job": "j"}}, "workflow", "unknown workflow field(s): job"),
    (GenerateRequestBody, {"text": "\ud800"}, "text", "text is not valid Unicode"),
    (CompletionRequest, {"prompt": "x", "echo": True, "messages": USER}, None, "unknown field(s): messages"),
    (CompletionRequest, {}, "prompt", "prompt is required"),
    (CompletionRequest, {"prompt": [[1], []]}, "prompt[1]", "prompt[1] must be a non-empty list"),
    (CompletionRequest, {"prompt": "x", "logprobs": 21}, "logprobs", "logprobs must be <= 20, got 21"),
    (ChatCompletionRequest, {"messages": []}, "messages", "messages must be a non-empty list"),
    (ChatCompletionRequest, {"messages": [{"role": "bot", "content": "x"}]}, "messages[0]",
     "each message needs a role of system, developer, user, assistant or tool"),
    (ChatCompletionRequest, {"messages": [{"role": "user"}]}, "messages[0].content", "messages[0].content is required"),
    (ChatCompletionRequest, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].type", "messages[0].content[0].type must be 'text', got 'image_url'"),
    (ChatCompletionRequest, {"messages": [{"role": "tool", "content": "4"}]}, "messages[0].tool_call_id",
     "messages[0].tool_call_id is required"),
    (ChatCompletionRequest, {"messages": USER, "temperature": -1}, "temperature", "temperature must be >= 0, got -1"),
    (ChatCompletionRequest, {"messages": USER, "logprobs": 1}, "logprobs", "logprobs must be true or false, got 1"),
    (ChatCompletionRequest, {"messages": USER, "response_format": {"type": "yaml"}}, "response_format.type",
     "response_format.type must be one of 'text', 'json_object', 'json_schema', got 'yaml'"),
    (ChatCompletionRequest, {"messages": USER, "response_format": {"type": "json_schema"}},
     "response_format.json_schema", "response_format.json_schema is required"),
    (ChatCompletionRequest, {"messages": USER, "tool_choice": "always"}, "tool_choice",
     "tool_choice must be 'none', 'auto' or 'required', got 'always'"),
    (ChatCompletionRequest, {"messages": USER, "tools": [{"type": "function", "function": {"name": "a b"}}]},
     "tools[0].function.name", "tools[0].function.name must match"),
    (TopologyRequest, {"type": "t", "agents": [{"name": f"a{i}"} for i in range(300)]}, "agents",
     "agents must have at most 256 item(s), got 300"),
    (TopologyRequest, {"type": "t", "edges": [{"from": "a"}]}, "edges[0].to", "edges[0].to is required"),
    (TopologyRequest, {"type": "t", "agents": None}, "agents", "agents must be a list, got None"),
    # a misspelt or invented field would register a topology without what it meant
    (TopologyRequest, {"type": "t", "agents": [{"name": "a", "after": ["b"]}]}, "agents[0]",
     "agents[0]: unknown field(s): after"),
    # two fields wrong: the first is named, alone
    (TopologyRequest, {"type": "t", "agents": [{"name": None, "long_context": 1}]}, "agents[0].name",
     "agents[0].name must be a string, got None"),
])
def test_a_bad_body_is_one_400_naming_the_field(model, body, param, message):
    error = refusal(model, body)
    assert error.param == param
    assert error.message.startswith(message) or message in error.message, error.message
    assert "pydantic" not in error.message and "Input should" not in error.message


@pytest.mark.parametrize("model, body", [
    # what the SGLang frontend sends, unknown fields included (ignored, as before the models)
    (GenerateRequestBody, {"text": "Q: 1+1?", "sampling_params": {"max_new_tokens": 8, "skip_special_tokens": True,
                                                                   "spaces_between_special_tokens": True,
                                                                   "dtype": None}, "image_data": None}),
    (GenerateRequestBody, {"input_ids": [[1, 2], [3]], "sampling_params": {"max_new_tokens": 0},
                           "return_logprob": True, "logprob_start_len": 0}),
    (GenerateRequestBody, {"text": "x", "sampling_params": {"max_new_tokens": 2.0, "json_schema": {"type": "object"},
                                                            "logit_bias": {"42": -100}}}),
    (CompletionRequest, {"model": "m", "prompt": [[1, 2], [3]], "echo": True, "logprobs": 2, "n": 2, "seed": 2**70}),
    (ChatCompletionRequest, {"messages": [
        {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
        "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get"}}, "stream": True,
        "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}}),
    (TopologyRequest, {"type": "t", "agents": [{"name": "a", "tools": ["x"]}, {"name": "b"}],
                       "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a", "max_repeats": 2}]}),
])
def test_what_clients_send_passes(model, body):
    check_body(json.loads(json.dumps(body)), model)


def test_model_names_are_unique_across_the_apis():
    """The schema's components are named by class name alone (protocol.openapi)."""
    names: dict[str, str] = {}
    for module in (errors, openai, sglang, workflow):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                assert name not in names, f"{name} in {module.__name__} and {names[name]}"
                names[name] = module.__name__


def test_the_handler_gets_what_the_client_sent_with_integers_as_ints():
    """No defaults filled in, unknown fields of open objects kept, 2.0 handed on as the integer 2
    (JSON Schema's integer; the routes' own checks want an int)."""
    body = {"text": "x", "logprob_start_len": 3.0, "rid": None, "image_data": [1],
            "sampling_params": {"max_new_tokens": 2.0, "temperature": 0.5}}
    checked = check_body(body, GenerateRequestBody)
    assert checked == {"text": "x", "logprob_start_len": 3, "rid": None, "image_data": [1],
                       "sampling_params": {"max_new_tokens": 2, "temperature": 0.5}}
    assert type(checked["logprob_start_len"]) is int and type(checked["sampling_params"]["max_new_tokens"]) is int
    edge = check_body({"type": "t", "edges": [{"from": "a", "to": "b", "max_repeats": 2.0}]}, TopologyRequest)
    assert edge == {"type": "t", "edges": [{"from": "a", "to": "b", "max_repeats": 2}]}
    chat = {"messages": [{"role": "developer", "content": [{"type": "text", "text": "hi"}]}], "n": 1.0}
    assert check_body(chat, ChatCompletionRequest) == {**chat, "n": 1}
