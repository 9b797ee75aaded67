"""Tool calling on /v1/chat/completions with the openai client against the live server (SmolLM2,
whose template does not render tools, so the server's default tools prompt and the qwen25 format)."""

from __future__ import annotations

import json
import threading

import openai
import pytest
import requests

MODEL = "SmolLM2-135M-Instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"},
                                  "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a time zone",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"zone": {"type": "string"}, "hours24": {"type": "boolean"}},
                   "required": ["zone", "hours24"]}}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def check_arguments(tool: dict, arguments: str) -> dict:
    """The arguments parse and match the tool's schema (required keys, nothing else, types, enums)."""
    schema = tool["function"]["parameters"]
    value = json.loads(arguments)
    assert isinstance(value, dict) and set(value) == set(schema["required"]), value
    types = {"string": str, "boolean": bool}
    for key, prop in schema["properties"].items():
        assert isinstance(value[key], types[prop["type"]]), (key, value)
        assert "enum" not in prop or value[key] in prop["enum"], (key, value)
    return value


def test_a_named_function_is_called_with_valid_arguments_and_streams_the_same_call(client):
    kwargs = dict(model=MODEL, messages=QUESTION, tools=[WEATHER, CLOCK], tool_choice=NAMED, temperature=0,
                  max_tokens=60)
    choice = client.chat.completions.create(**kwargs).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    check_arguments(WEATHER, call.function.arguments)

    calls: dict[int, dict] = {}
    finish, content = None, ""
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for part in delta.tool_calls or []:
            if part.index not in calls:  # the first delta of a call names it
                assert part.id.startswith("call_") and part.type == "function" and part.function.name
                calls[part.index] = {"name": part.function.name, "arguments": ""}
            calls[part.index]["arguments"] += part.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert content == "" and finish == "tool_calls"
    assert [calls[i] for i in sorted(calls)] == [{"name": "get_weather", "arguments": call.function.arguments}]


def test_required_calls_one_of_the_tools(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What time is it in Tokyo?"}], tools=[WEATHER, CLOCK],
        tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=60)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    tool = {"get_weather": WEATHER, "get_time": CLOCK}[call.function.name]
    check_arguments(tool, call.function.arguments)


def test_none_leaves_the_tools_out_and_auto_puts_them_in_the_prompt(client):
    plain = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=8)
    none = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER], tool_choice="none",
                                          temperature=0, max_tokens=8)
    auto = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER], temperature=0,
                                          max_tokens=8)
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason != "tool_calls"
    assert none.choices[0].message.content == plain.choices[0].message.content
    assert none.usage.prompt_tokens < auto.usage.prompt_tokens
    # Under "auto" the 135M model rarely calls by itself; whatever it wrote is a well-formed answer.
    message = auto.choices[0].message
    for call in message.tool_calls or []:
        check_arguments(WEATHER, call.function.arguments)
    assert message.tool_calls or isinstance(message.content, str)


def test_content_beside_tools_still_streams_as_it_comes(client):
    kwargs = dict(model=MODEL, messages=QUESTION, tools=[WEATHER], temperature=0, max_tokens=8)
    plain = client.chat.completions.create(**kwargs).choices[0].message
    if plain.tool_calls:
        pytest.skip("the model called the tool here; this test is about its prose")
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(stream=True, **kwargs)
              if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == plain.content
    assert len(pieces) > 1, pieces  # sent token by token, not held to the end


def test_a_tool_result_turn_after_a_call_is_answered(client):
    call = {"id": "call_abc", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}
    history = [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_abc", "content": '{"temperature": 18, "sky": "clear"}'}]
    second = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER], temperature=0,
                                            max_tokens=12)
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert second.usage.completion_tokens > 0
    # The call and its result reached the prompt: more tokens than the first turn alone.
    first = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER], max_tokens=1)
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + 20


def fn(name: str, parameters: object = None) -> dict:
    return {"type": "function", "function": {"name": name, **({"parameters": parameters} if parameters else {})}}


@pytest.mark.parametrize("body, param, words", [
    ({"tools": "get_weather"}, "tools", "must be a list"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
     "tool_choice", "not in tools"),
    ({"tools": [fn("f", {"type": "array"})]}, "tools[0].function.parameters", "describe an object"),
    ({"tools": [WEATHER, fn("f", {"type": "object", "properties": {"a": {"type": "strnig"}}})],
      "tool_choice": "required"}, "tools[1].function.parameters", "not a JSON schema"),
    ({"tools": [WEATHER], "tool_choice": NAMED, "response_format": {"type": "json_object"}},
     "tool_choice", "cannot be combined"),
    ({"messages": [*QUESTION, {"role": "tool", "content": "18 C"}]}, "messages[1].tool_call_id", "tool_call_id"),
    ({"messages": [*QUESTION, {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{nope"}}]}]},
     "messages[1].tool_calls[0].function.arguments", "JSON object"),
    ({"tools": [WEATHER], "chat_template_kwargs": {"tools": [CLOCK]}}, "chat_template_kwargs", "may not set tools"),
])
def test_bad_tool_requests_are_400s_beside_a_good_request(server, body, param, words):
    good: dict = {}

    def run_good():
        good["r"] = server.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 4, "temperature": 0})

    worker = threading.Thread(target=run_good)
    worker.start()
    bad = requests.post(server.url + "/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 4, **body},
                        timeout=120)
    worker.join()
    assert good["r"].status_code == 200, good["r"].text
    assert bad.status_code == 400, bad.text
    error = bad.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_no_page_leaks_after_the_tool_scenarios(server):
    server.assert_no_leaks()
