"""Chat messages of /v1/chat/completions: checked, and shaped for the model's chat template.

Tools reach the prompt one of two ways:

- The model's chat template renders them when it references a `tools` variable (Qwen2.5,
  Llama 3.1, Hermes and most tool-trained models): the template gets `tools=[...]`, assistant
  messages with `tool_calls` (arguments as objects) and `tool` messages, as transformers'
  `apply_chat_template` documents.
- Otherwise the server renders them itself, as the default: a system-prompt block listing the
  functions' JSON and teaching the `--tool-call-parser` format (`ToolCallFormat.instructions`),
  earlier calls written into the assistant's content in that format, and tool results as a
  user message of `<tool_response>` blocks (most templates know only system, user and assistant).
  SmolLM2-135M-Instruct, the default model, takes this path: its ChatML template writes only
  each message's role and content.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
import jinja2.meta

from pythia.entrypoints.errors import bad_request
from pythia.entrypoints.tool_parsers import ToolCallFormat

ROLES = ("system", "developer", "user", "assistant", "tool")


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Messages as {"role", "content": str} plus, for assistants that called tools, "tool_calls"
    [{"id", "type", "function": {"name", "arguments": dict}}] and, for tool results,
    "tool_call_id" and "name" (the called function's). 400 naming the message otherwise."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list", "messages")
    clean: list[dict[str, Any]] = []
    called: dict[str, str] = {}  # tool call id -> function name, from the assistant messages so far
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad_request("each message needs a role of system, developer, user, assistant or tool", where)
        content = _content(m.get("content"), where)
        role = "system" if m["role"] == "developer" else m["role"]
        message: dict[str, Any] = {"role": role, "content": content}
        if m.get("tool_calls") is not None:
            if role != "assistant":
                raise bad_request(f"{where}: only assistant messages carry tool_calls", f"{where}.tool_calls")
            message["tool_calls"] = _tool_calls(m["tool_calls"], f"{where}.tool_calls")
            called.update((c["id"], c["function"]["name"]) for c in message["tool_calls"])
        if role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad_request(f"{where}: a tool message needs the tool_call_id of the call it answers",
                                  f"{where}.tool_call_id")
            if call_id not in called:
                raise bad_request(f"{where}: tool_call_id {call_id!r} answers no tool call of an earlier assistant "
                                  "message", f"{where}.tool_call_id")
            message.update(tool_call_id=call_id, name=called[call_id])
        clean.append(message)
    return clean


def _content(content: Any, where: str) -> str:
    if isinstance(content, list):  # content parts: text ones only, this model reads nothing else
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"{where}.content[{j}] must be a text part {{\"type\": \"text\", \"text\": "
                                  "\"...\"}} (this model reads text only)", f"{where}.content[{j}]")
            texts.append(part["text"])
        content = "".join(texts)
    if content is not None and not isinstance(content, str):
        raise bad_request("message content must be a string or a list of text parts", f"{where}.content")
    return content or ""


def _tool_calls(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request(f"{where} must be a list", where)
    calls = []
    for j, call in enumerate(raw):
        at = f"{where}[{j}]"
        if (not isinstance(call, dict) or call.get("type", "function") != "function"
                or not isinstance(call.get("function"), dict)):
            raise bad_request(f"{at} must be {{\"id\", \"type\": \"function\", \"function\": {{\"name\", "
                              "\"arguments\"}}}}", at)
        call_id, fn = call.get("id"), call["function"]
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(f"{at}.id must be a non-empty string", f"{at}.id")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{at}.function.name must be a non-empty string", f"{at}.function.name")
        arguments = fn.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except (json.JSONDecodeError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            raise bad_request(f"{at}.function.arguments must be a JSON object encoded as a string, as the "
                              "response carried it", f"{at}.function.arguments")
        calls.append({"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": parsed}})
    return calls


@functools.lru_cache(maxsize=16)
def template_references_tools(template: str) -> bool:
    """Whether a chat template reads a `tools` variable; one that does not would drop them."""
    try:
        return "tools" in jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except jinja2.TemplateSyntaxError:
        return False  # transformers' own environment (extensions) may still render it; tools go our way


def template_input(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, fmt: ToolCallFormat,
                   template: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(conversation, tools) for apply_chat_template, given the tools to render (OpenAI's tool
    objects; None for none). The history's calls and results are rendered either way."""
    listed = tools or None
    if template_references_tools(template):
        return messages, listed
    conversation = [_as_text(m, fmt) for m in messages]
    merged: list[dict[str, Any]] = []
    for m in conversation:  # consecutive tool results: one user turn, as the model answers them at once
        if merged and m.get("from_tool") and merged[-1].get("from_tool"):
            merged[-1]["content"] += "\n" + m["content"]
        else:
            merged.append(m)
    conversation = [{"role": m["role"], "content": m["content"]} for m in merged]
    if listed:
        block = fmt.instructions(listed)
        if conversation[0]["role"] == "system":
            conversation[0] = {"role": "system", "content": conversation[0]["content"] + "\n\n" + block}
        else:
            conversation.insert(0, {"role": "system", "content": block})
    return conversation, None


def _as_text(m: dict[str, Any], fmt: ToolCallFormat) -> dict[str, Any]:
    if m["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>\n{m['content']}\n</tool_response>", "from_tool": True}
    if m.get("tool_calls"):
        calls = fmt.render_calls([(c["function"]["name"], c["function"]["arguments"]) for c in m["tool_calls"]])
        return {"role": "assistant", "content": m["content"] + "\n" + calls if m["content"] else calls}
    return {"role": m["role"], "content": m["content"]}
