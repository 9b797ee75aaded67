"""Tool calling without a server: output parsers (one-shot and streamed), request checks, the
grammar that forces a call (compiled as the engine compiles it), prompt rendering, the flag."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pythia.entrypoints.chat_messages import normalize_messages, template_input, template_references_tools
from pythia.entrypoints.errors import HTTPError
from pythia.entrypoints.tool_calls import forced_call_grammar, parse_tool_request
from pythia.entrypoints.tool_parsers import TOOL_CALL_PARSERS, ParsedCall, ToolCallStream, parse_tool_calls
from pythia.server_args import ServerArgs

QWEN, LLAMA = TOOL_CALL_PARSERS["qwen25"], TOOL_CALL_PARSERS["llama3"]
NAMES = frozenset({"get_weather", "get_time"})
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/zone"}},
                                       "required": ["zone"], "$defs": {"zone": {"type": "string"}}}}}


def call(name: str, **arguments) -> ParsedCall:
    return ParsedCall(name, json.dumps(arguments))


# ------------------------------------------------------------------ qwen25

@pytest.mark.parametrize("text, content, calls", [
    ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
     None, [call("get_weather", city="Paris", unit="celsius")]),
    ('Let me check.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>\n'
     '<tool_call>{"name": "get_weather", "parameters": {"city": "Rome", "unit": "celsius"}}</tool_call>',
     "Let me check.", [call("get_time", zone="UTC"), call("get_weather", city="Rome", unit="celsius")]),
    # Left open at the end, with a complete call inside: still a call.
    ('<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}', None, [call("get_time", zone="CET")]),
    ('<tool_call>{"name": "get_time", "arguments": {}}</tool_call> done', "done", [call("get_time")]),
])
def test_qwen25_splits_calls_from_content(text, content, calls):
    assert parse_tool_calls(text, QWEN, NAMES) == (content, calls)


def test_without_parallel_calls_only_the_first_call_is_kept():
    text = ('<tool_call>{"name": "get_time", "arguments": {"zone": "UTC"}}</tool_call>\n'
            '<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>')
    assert parse_tool_calls(text, QWEN, NAMES, max_calls=1) == (None, [call("get_time", zone="UTC")])
    stream = ToolCallStream(QWEN, NAMES, max_calls=1)
    sent = [stream.feed(text[:60]), stream.feed(text[60:], final=True)]
    assert [c for _, calls in sent for c in calls] == [call("get_time", zone="UTC")]


@pytest.mark.parametrize("text", [
    "The weather is fine.",
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa',            # cut off mid-JSON
    '<tool_call>{"name": "launch_rocket", "arguments": {}}</tool_call>',      # not one of the tools
    '<tool_call>{"name": "get_time", "arguments": "UTC"}</tool_call>',        # arguments not an object
    '<tool_call>not json</tool_call> and <tool_call',
])
def test_qwen25_text_that_is_no_call_stays_content_unchanged(text):
    assert parse_tool_calls(text, QWEN, NAMES) == (text, [])


def test_a_bad_block_beside_a_good_one_stays_content():
    text = '<tool_call>{"name": "nope"}</tool_call>\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    assert parse_tool_calls(text, QWEN, NAMES) == ('<tool_call>{"name": "nope"}</tool_call>', [call("get_time")])


# ------------------------------------------------------------------ llama3

@pytest.mark.parametrize("text, content, calls", [
    ('{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "celsius"}}',
     None, [call("get_weather", city="Oslo", unit="celsius")]),
    (' {"name": "get_time", "parameters": {"zone": "UTC"}}; {"name": "get_time", "arguments": {"zone": "CET"}}',
     None, [call("get_time", zone="UTC"), call("get_time", zone="CET")]),
    ('Sure. <|python_tag|>{"name": "get_time", "parameters": {"zone": "UTC"}}',
     "Sure.", [call("get_time", zone="UTC")]),
    ('{"name": "get_time", "parameters": {}} and then some words', "and then some words", [call("get_time")]),
])
def test_llama3_splits_calls_from_content(text, content, calls):
    assert parse_tool_calls(text, LLAMA, NAMES) == (content, calls)


@pytest.mark.parametrize("text", [
    '{"answer": 42}',                                             # JSON, but no call
    'The call would be {"name": "get_time", "parameters": {}}',  # a call mid-text is prose, not a call
    "<|python_tag|>",
    '{"name": "get_time", "parameters": {',
])
def test_llama3_text_that_is_no_call_stays_content_unchanged(text):
    assert parse_tool_calls(text, LLAMA, NAMES) == (text, [])


# ------------------------------------------------------------------ streaming

STREAM_TEXTS = [
    "Plain text, no calls at all.\n",
    'Checking.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
    '<tool_call>{"name": "nope", "arguments": {}}</tool_call> <tool_ca',
    "a < b and <tool> tags",
]


@pytest.mark.parametrize("fmt", [QWEN, LLAMA], ids=["qwen25", "llama3"])
@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from(STREAM_TEXTS + ['{"name": "get_time", "parameters": {"zone": "UTC"}}; oops']),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_any_split_of_the_stream_gives_the_one_shot_answer(fmt, text, cuts):
    points = sorted({c for c in cuts if c < len(text)} | {0, len(text)})
    stream = ToolCallStream(fmt, NAMES)
    content = ""
    calls: list[ParsedCall] = []
    for a, b in zip(points, points[1:]):
        piece, new = stream.feed(text[a:b])
        content += piece
        calls += new
    piece, new = stream.feed("", final=True)
    content += piece
    calls += new
    one_shot_content, one_shot_calls = parse_tool_calls(text, fmt, NAMES)
    assert calls == one_shot_calls
    assert content == (one_shot_content or "")


def test_content_streams_before_the_end_and_only_a_possible_call_waits():
    stream = ToolCallStream(QWEN, NAMES)
    assert stream.feed("Hello ") == ("Hello", [])  # the space waits: it goes if a call follows
    assert stream.feed("world <tool_") == (" world", [])  # "<tool_" may become a call
    assert stream.feed('call>{"name": "get_time", "arguments": {}}') == ("", [])
    assert stream.feed("</tool_call>") == ("", [call("get_time")])
    assert stream.feed(" bye", final=True) == ("bye", [])


# ------------------------------------------------------------------ request checks

def test_defaults_auto_and_parallel_when_tools_are_given():
    request = parse_tool_request({"tools": [WEATHER, CLOCK]})
    assert (request.choice, request.parallel, request.active, request.forces_call) == ("auto", True, True, False)
    assert request.names == NAMES
    assert parse_tool_request({"messages": []}) is None
    assert parse_tool_request({"tools": [WEATHER], "tool_choice": "none"}).active is False
    named = parse_tool_request({"tools": [WEATHER, CLOCK], "tool_choice": {"type": "function",
                                                                           "function": {"name": "get_time"}}})
    assert (named.choice, named.forced, named.forces_call) == ("function", "get_time", True)


def fn(**function) -> dict:
    return {"type": "function", "function": function}


@pytest.mark.parametrize("body, param, words", [
    ({"tools": {"get_weather": WEATHER}}, "tools", "must be a list"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0]", "only function tools"),
    ({"tools": [fn(name="has space")]}, "tools[0].function.name", "letters, digits"),
    ({"tools": [fn(name="f", parameters={"type": "string"})]}, "tools[0].function.parameters", "describe an object"),
    ({"tools": [fn(name="f", parameters=[1])]}, "tools[0].function.parameters", "JSON schema object"),
    ({"tools": [fn(name="f", parameters={"type": "object", "properties": {"a": 3}})]},
     "tools[0].function.parameters", "map names to JSON schemas"),
    ({"tools": [fn(name="f", parameters={"type": "object", "required": "a"})]},
     "tools[0].function.parameters", "list of property names"),
    ({"tools": [fn(name="f"), fn(name="f")]}, "tools[1].function.name", "more than once"),
    ({"tools": [fn(name="f", descripton="typo")]}, "tools[0].function", "descripton"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
     "tool_choice", "not in tools"),
    ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice", "must be"),
    ({"tool_choice": "required"}, "tool_choice", "at least one tool"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls", "true or false"),
    ({"tools": [fn(name=f"f{i}") for i in range(129)]}, "tools", "limit of 128"),
])
def test_bad_tool_settings_are_400s_naming_the_parameter(body, param, words):
    with pytest.raises(HTTPError) as err:
        parse_tool_request(body)
    assert (err.value.status, err.value.param) == (400, param)
    assert words in err.value.message, err.value.message


@pytest.mark.parametrize("messages, param, words", [
    ([{"role": "tool", "content": "18 C"}], "messages[0].tool_call_id", "needs the tool_call_id"),
    ([{"role": "tool", "content": "18 C", "tool_call_id": "call_9"}],
     "messages[0].tool_call_id", "answers no tool call"),
    ([{"role": "user", "content": "hi", "tool_calls": []}], "messages[0].tool_calls", "only assistant"),
    ([{"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f"}}]}],
     "messages[0].tool_calls[0].id", "non-empty string"),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                             "function": {"name": "f", "arguments": "{oops"}}]}],
     "messages[0].tool_calls[0].function.arguments", "JSON object"),
    ([{"role": "assistant", "tool_calls": {"id": "c"}}], "messages[0].tool_calls", "must be a list"),
    ([{"role": "user", "content": [{"type": "text", "text": None}]}], "messages[0].content[0]", "text part"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
     "messages[0].content[0]", "text only"),
])
def test_bad_tool_history_is_a_400_naming_the_message(messages, param, words):
    with pytest.raises(HTTPError) as err:
        normalize_messages(messages)
    assert (err.value.status, err.value.param) == (400, param)
    assert words in err.value.message, err.value.message


# ------------------------------------------------------------------ forced calls

@pytest.fixture(scope="module")
def grammar_backend(default_model):
    from transformers import AutoConfig, AutoTokenizer

    from pythia.model_executor.grammar import GrammarBackend

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    return GrammarBackend(tokenizer, AutoConfig.from_pretrained(default_model).vocab_size), tokenizer.eos_token_id


def accepts(backend, grammar: str, text: str) -> bool:
    """Whether the engine's matcher for `grammar` takes `text` and may then end."""
    from pythia.model_executor.sampling_params import SamplingParams

    backend, eos = backend
    matcher = backend.matcher(SamplingParams(ebnf=grammar))
    return matcher.accept_string(text) and matcher.accept_token(eos)


@pytest.mark.parametrize("fmt", [QWEN, LLAMA], ids=["qwen25", "llama3"])
def test_a_named_function_grammar_takes_exactly_one_valid_call_of_it(grammar_backend, fmt):
    request = parse_tool_request({"tools": [WEATHER, CLOCK],
                                  "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    grammar = forced_call_grammar(request, fmt)
    good = ("get_weather", {"city": "Paris", "unit": "celsius"})
    assert accepts(grammar_backend, grammar, fmt.render_calls([good]))
    for bad in ([("get_time", {"zone": "UTC"})],                         # another function
                [("get_weather", {"city": "Paris"})],                     # a required argument missing
                [("get_weather", {"city": "Paris", "unit": "kelvin"})],   # outside the enum
                [("get_weather", {"city": 7, "unit": "celsius"})],        # wrong type
                [good, good]):                                            # a second call
        assert not accepts(grammar_backend, grammar, fmt.render_calls(bad)), bad
    assert not accepts(grammar_backend, grammar, "Sure! " + fmt.render_calls([good]))


@pytest.mark.parametrize("fmt", [QWEN, LLAMA], ids=["qwen25", "llama3"])
def test_required_takes_any_tool_and_several_calls_only_when_parallel(grammar_backend, fmt):
    calls = [("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"zone": "UTC"})]
    parallel = forced_call_grammar(parse_tool_request({"tools": [WEATHER, CLOCK], "tool_choice": "required"}), fmt)
    single = forced_call_grammar(parse_tool_request({"tools": [WEATHER, CLOCK], "tool_choice": "required",
                                                     "parallel_tool_calls": False}), fmt)
    for grammar in (parallel, single):
        assert accepts(grammar_backend, grammar, fmt.render_calls(calls[1:]))  # $ref into $defs resolves
        assert not accepts(grammar_backend, grammar, "")
    assert accepts(grammar_backend, parallel, fmt.render_calls(calls))
    assert not accepts(grammar_backend, single, fmt.render_calls(calls))
    # What the grammar lets through, the parser reads back.
    assert parse_tool_calls(fmt.render_calls(calls), fmt, NAMES) == (
        None, [call("get_weather", city="Paris", unit="celsius"), call("get_time", zone="UTC")])


def test_a_schema_the_grammar_backend_cannot_use_is_a_400():
    bad = fn(name="f", parameters={"type": "object", "properties": {"a": {"type": "strnig"}}})
    request = parse_tool_request({"tools": [WEATHER, bad], "tool_choice": "required"})
    with pytest.raises(HTTPError) as err:
        forced_call_grammar(request, QWEN)
    assert (err.value.status, err.value.param) == (400, "tools[1].function.parameters")


# ------------------------------------------------------------------ prompt rendering

HISTORY = [{"role": "user", "content": "Weather in Paris?"},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}},
               {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}}]},
           {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
           {"role": "tool", "tool_call_id": "call_2", "content": "14:00"}]


def test_smollm2s_template_takes_the_default_path(default_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    assert not template_references_tools(tokenizer.get_chat_template())
    conversation, tools = template_input(normalize_messages(HISTORY), [WEATHER], QWEN, tokenizer.get_chat_template())
    assert tools is None
    assert [m["role"] for m in conversation] == ["system", "user", "assistant", "user"]
    assert json.dumps(WEATHER) in conversation[0]["content"] and "<tool_call>" in conversation[0]["content"]
    assert parse_tool_calls(conversation[2]["content"], QWEN, NAMES)[1] == [
        call("get_weather", city="Paris", unit="celsius"), call("get_time", zone="CET")]
    assert conversation[3]["content"] == ("<tool_response>\n18 C\n</tool_response>\n"
                                          "<tool_response>\n14:00\n</tool_response>")
    # tool_choice "none": no tools block, the history still rendered.
    conversation, _ = template_input(normalize_messages(HISTORY), None, QWEN, tokenizer.get_chat_template())
    assert [m["role"] for m in conversation] == ["user", "assistant", "user"]


# A tool-aware template of the kind Qwen2.5 and Llama 3.1 ship, reduced to what is checked here.
TOOL_TEMPLATE = (
    "{% if tools %}TOOLS:{% for t in tools %}{{ t.function.name }};{% endfor %}|{% endif %}"
    "{% for m in messages %}{{ m.role }}:{{ m.content }}"
    "{% for c in m.tool_calls or [] %}[{{ c.function.name }} {{ c.function.arguments.city }}]{% endfor %}"
    "{% if m.role == 'tool' %}({{ m.name }}){% endif %}|{% endfor %}")


def test_a_template_that_renders_tools_gets_them_and_the_structured_history(default_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    tokenizer.chat_template = TOOL_TEMPLATE
    assert template_references_tools(TOOL_TEMPLATE)
    conversation, tools = template_input(normalize_messages(HISTORY), [WEATHER, CLOCK], QWEN, TOOL_TEMPLATE)
    assert tools == [WEATHER, CLOCK]
    rendered = tokenizer.apply_chat_template(conversation, tools=tools, tokenize=False)
    assert rendered == ("TOOLS:get_weather;get_time;|user:Weather in Paris?|"
                        "assistant:[get_weather Paris][get_time ]|tool:18 C(get_weather)|tool:14:00(get_time)|")


# ------------------------------------------------------------------ the flag

def test_an_unknown_parser_is_a_bad_flag():
    with pytest.raises(ValueError, match="--tool-call-parser must be one of qwen25, llama3"):
        ServerArgs(tool_call_parser="hermes2").validate()
    ServerArgs(tool_call_parser="llama3").validate()
    proc = subprocess.run([sys.executable, "-m", "pythia.launch_server", "--tool-call-parser", "hermes2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--tool-call-parser must be one of" in proc.stderr and "Traceback" not in proc.stderr
