"""OpenAI tool calling on /v1/chat/completions, the request side: `tools`, `tool_choice` and
`parallel_tool_calls` checked into a `ToolRequest`, the grammar that forces a call, and the
`tool_calls` objects of a response.

`tool_choice`:
- "auto" (the default when tools are given): the tools are rendered into the prompt and the
  output is parsed; text that does not parse as a call stays content.
- "none": the tools are neither rendered nor parsed, so the model writes plain content (history
  messages with tool calls and results are still rendered).
- "required", or {"type": "function", "function": {"name": ...}}: rendered, parsed, and the
  output is constrained by an xgrammar grammar to calls in the `--tool-call-parser` format whose
  arguments match the function's `parameters` schema: "required" allows any of the tools (one
  call, or several with `parallel_tool_calls`), a named function exactly one call of it.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import xgrammar as xgr
from xgrammar.structural_tag import ConstStringFormat, GrammarFormat, SequenceFormat, StarFormat, StructuralTag

from pythia.entrypoints.errors import bad_request
from pythia.model_executor.grammar import grammar_error_message
from pythia.entrypoints.tool_parsers import ParsedCall, ToolCallFormat

MAX_TOOLS = 128  # OpenAI's own limit
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenAI's rule for function names
_SCHEMA_KEYWORDS_OF_SCHEMAS = ("properties", "$defs", "definitions", "patternProperties")


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON schema of the arguments object

    def as_json(self) -> dict[str, Any]:
        """OpenAI's tool object, as chat templates and the default tools prompt list it."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolRequest:
    tools: tuple[FunctionTool, ...]
    choice: str          # "auto", "none", "required" or "function" (a named one)
    forced: str | None   # the function's name when choice is "function"
    parallel: bool       # parallel_tool_calls: more than one call allowed

    @property
    def names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tools)

    @property
    def active(self) -> bool:
        """Tools rendered into the prompt and calls parsed from the output."""
        return self.choice != "none" and bool(self.tools)

    @property
    def max_calls(self) -> int | None:
        return None if self.parallel else 1

    @property
    def forces_call(self) -> bool:
        return self.choice in ("required", "function")


def parse_tool_request(body: dict[str, Any]) -> ToolRequest | None:
    """The request's tool settings, None when it has none; 400 naming the parameter otherwise."""
    raw_tools, choice, parallel = body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls")
    if raw_tools is None and choice is None and parallel is None:
        return None
    if raw_tools is None:
        raw_tools = []
    if not isinstance(raw_tools, list):
        raise bad_request("tools must be a list of {\"type\": \"function\", \"function\": {...}} objects", "tools")
    if len(raw_tools) > MAX_TOOLS:
        raise bad_request(f"tools has {len(raw_tools)} entries, more than the limit of {MAX_TOOLS}", "tools")
    tools = tuple(_function_tool(t, f"tools[{i}]") for i, t in enumerate(raw_tools))
    seen: set[str] = set()
    for i, t in enumerate(tools):
        if t.name in seen:
            raise bad_request(f"function name {t.name!r} appears more than once in tools", f"tools[{i}].function.name")
        seen.add(t.name)
    if parallel is not None and not isinstance(parallel, bool):
        raise bad_request("parallel_tool_calls must be true or false", "parallel_tool_calls")
    kind, forced = _tool_choice(choice, seen)
    return ToolRequest(tools, kind, forced, parallel is not False)


def _function_tool(raw: Any, where: str) -> FunctionTool:
    if (not isinstance(raw, dict) or raw.get("type", "function") != "function"
            or not isinstance(raw.get("function"), dict)):
        raise bad_request(f"{where} must be {{\"type\": \"function\", \"function\": {{\"name\", \"description\", "
                          "\"parameters\"}}}} (only function tools are supported)", where)
    fn = raw["function"]
    unknown = set(fn) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise bad_request(f"unknown field(s) in {where}.function: {', '.join(sorted(unknown))}", f"{where}.function")
    name = fn.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        raise bad_request(f"{where}.function.name must be 1 to 64 letters, digits, '_' or '-', got {name!r}",
                          f"{where}.function.name")
    description = fn.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request(f"{where}.function.description must be a string", f"{where}.function.description")
    if fn.get("strict") is not None and not isinstance(fn["strict"], bool):
        raise bad_request(f"{where}.function.strict must be true or false", f"{where}.function.strict")
    parameters = fn.get("parameters")
    if parameters is None:  # OpenAI: a function without parameters takes an empty object
        parameters = {"type": "object", "properties": {}}
    _check_parameters_schema(parameters, f"{where}.function.parameters")
    return FunctionTool(name, description, parameters)


def _check_parameters_schema(schema: Any, where: str) -> None:
    """The shape OpenAI requires of `parameters`: a JSON schema describing an object. Deeper
    schema errors surface when a grammar is built from it (tool_choice required or named)."""
    if not isinstance(schema, dict):
        raise bad_request(f"{where} must be a JSON schema object", where)
    if schema.get("type", "object") != "object":
        raise bad_request(f"{where} must describe an object (\"type\": \"object\"), got type {schema['type']!r}", where)
    for key in _SCHEMA_KEYWORDS_OF_SCHEMAS:
        value = schema.get(key)
        maps_to_schemas = isinstance(value, dict) and all(isinstance(v, (dict, bool)) for v in value.values())
        if value is not None and not maps_to_schemas:
            raise bad_request(f"{where}.{key} must map names to JSON schemas", where)
    required = schema.get("required")
    if required is not None and not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise bad_request(f"{where}.required must be a list of property names", where)


def _tool_choice(choice: Any, names: set[str]) -> tuple[str, str | None]:
    if choice is None:
        return ("auto" if names else "none"), None
    if choice in ("auto", "none", "required"):
        if choice == "required" and not names:
            raise bad_request("tool_choice \"required\" needs at least one tool in tools", "tool_choice")
        return choice, None
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if not isinstance(name, str):
            raise bad_request("tool_choice.function.name must be a string", "tool_choice")
        if name not in names:
            raise bad_request(f"tool_choice names function {name!r}, which is not in tools"
                              + (f" (tools: {', '.join(sorted(names))})" if names else ""), "tool_choice")
        return "function", name
    raise bad_request("tool_choice must be \"auto\", \"none\", \"required\" or "
                      "{\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice")


def forced_call_grammar(request: ToolRequest, fmt: ToolCallFormat) -> str:
    """EBNF (xgrammar's dialect, compiled by the engine like any `ebnf` request) for output that
    is nothing but calls in `fmt`: each call's JSON is {"name": <const>, <arguments key>: <the
    function's parameters schema>}, its wrapper text written out as literals."""
    per_tool = []
    for i, tool in enumerate(request.tools):
        if request.choice == "function" and tool.name != request.forced:
            continue
        arguments = dict(tool.parameters)
        # References ("#/$defs/...") resolve from the root, which is now the call object.
        definitions = {key: arguments.pop(key) for key in ("$defs", "definitions") if key in arguments}
        schema = {"type": "object", "properties": {"name": {"const": tool.name}, fmt.arguments_key: arguments},
                  "required": ["name", fmt.arguments_key], **definitions}
        try:
            per_tool.append(_schema_grammar(json.dumps(schema)))  # key order is the output order
        except Exception as e:  # xgrammar raises several types for a schema it cannot use
            where = f"tools[{i}].function.parameters"
            raise bad_request(f"{where} is not a JSON schema the grammar backend accepts: "
                              f"{grammar_error_message(e)}", where) from None
    parts = [per_tool[0] if len(per_tool) == 1 else xgr.Grammar.union(*per_tool)]
    if fmt.call_begin:
        parts.insert(0, _literal(fmt.call_begin))
    if fmt.call_end:
        parts.append(_literal(fmt.call_end))
    call = xgr.Grammar.concat(*parts) if len(parts) > 1 else parts[0]
    if request.choice == "function" or not request.parallel:
        return str(call)
    call_format = GrammarFormat(grammar=str(call))
    more = SequenceFormat(elements=[ConstStringFormat(value=fmt.call_separator), call_format])
    return str(xgr.Grammar.from_structural_tag(StructuralTag(format=SequenceFormat(
        elements=[call_format, StarFormat(content=more)]))))


@functools.lru_cache(maxsize=256)  # agents send the same tools with every call
def _schema_grammar(schema: str) -> xgr.Grammar:
    # Compact JSON with the separators json.dumps writes: a small model given free whitespace
    # tends to spend its tokens on newlines.
    return xgr.Grammar.from_json_schema(schema, any_whitespace=False, separators=(", ", ": "))


def _literal(text: str) -> xgr.Grammar:
    return xgr.Grammar.from_ebnf(f"root ::= {json.dumps(text)}")  # JSON's string escapes are EBNF's


def tool_call_json(call: ParsedCall, index: int | None = None) -> dict[str, Any]:
    """One entry of `message.tool_calls` (with `index`: of `delta.tool_calls`, sent whole)."""
    entry: dict[str, Any] = {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                             "function": {"name": call.name, "arguments": call.arguments}}
    return entry if index is None else {"index": index, **entry}
