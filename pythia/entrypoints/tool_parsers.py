"""Tool-call output formats (`--tool-call-parser`): how a model writes function calls in its text,
how such text is split back into content and calls, and how calls are written into a prompt.

Pure functions and small classes, no server: the chat route feeds them the model's text.
Names follow SGLang's parser names:

- `qwen25`: Hermes / Qwen2.5 style, one block per call,
  `<tool_call>\\n{"name": "f", "arguments": {...}}\\n</tool_call>`, blocks anywhere in the text.
- `llama3`: Llama 3.1/3.2 JSON tool calling, `{"name": "f", "parameters": {...}}`, several
  separated by `;`, either as the whole answer or after a `<|python_tag|>` marker.

Text that looks like a call but does not parse as one (bad JSON, an unknown function name,
arguments that are not an object) stays content, so nothing the model wrote is lost.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class ParsedCall(NamedTuple):
    name: str       # a function of the request's `tools`
    arguments: str  # the arguments object as JSON text, which is how OpenAI's API carries it


class Segment(NamedTuple):
    text: str                # the model's text of this piece
    call: ParsedCall | None  # the call the text encodes; None: ordinary content


def decode_call(raw: str, names: frozenset[str]) -> ParsedCall | None:
    """One call from JSON text, or None when it is not a call of a known function. Both
    argument keys are read whatever the format: models trained on one often write the other."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    return call_from_object(obj, names)


def call_from_object(obj: Any, names: frozenset[str]) -> ParsedCall | None:
    if not isinstance(obj, dict) or obj.get("name") not in names:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(arguments, dict):
        return None
    return ParsedCall(obj["name"], json.dumps(arguments, ensure_ascii=False))


def _held_prefix(text: str, start: int, marker: str) -> int:
    """Length of the longest tail of text[start:] that could still grow into `marker`: that
    much must wait for more text before it can be sent as content."""
    for n in range(min(len(marker) - 1, len(text) - start), 0, -1):
        if marker.startswith(text[len(text) - n:]):
            return n
    return 0


class ToolCallFormat:
    """One output format. `scan` is the parser; the rest tells the prompt and the grammar the
    same format, so that what the model is taught and forced to write is what gets parsed."""

    name: str
    arguments_key: str   # the key of the arguments object in the call's JSON
    call_begin: str      # written before each call's JSON
    call_end: str        # written after it
    call_separator: str  # between two calls
    multiple_calls_note: str  # the instructions' last sentence: how arguments and several calls are written

    def scan(self, text: str, start: int, final: bool, names: frozenset[str]) -> tuple[list[Segment], int]:
        """Splits text[start:] into settled segments; returns them and where the unsettled rest
        begins (it may still become a call). With `final`, the whole text is settled."""
        raise NotImplementedError

    def render_calls(self, calls: list[tuple[str, dict[str, Any]]]) -> str:
        """Calls (name, arguments) as the model would have written them, for a history message."""
        return self.call_separator.join(
            self.call_begin + json.dumps({"name": name, self.arguments_key: args}, ensure_ascii=False) + self.call_end
            for name, args in calls)

    def instructions(self, tools: list[dict[str, Any]]) -> str:
        """The system-prompt block that lists the functions and teaches this format, for models
        whose chat template does not render tools."""
        listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        example = self.render_calls([("<function name>", {"<argument>": "<value>"})])
        return ("# Tools\n\nYou may call one or more of these functions. Each is described by a JSON object "
                f"with its name, purpose and a JSON schema of its arguments:\n<tools>\n{listing}\n</tools>\n\n"
                f"To call a function, write exactly:\n{example}\n{self.multiple_calls_note}")


class Qwen25Format(ToolCallFormat):
    name = "qwen25"
    arguments_key = "arguments"
    call_begin = "<tool_call>\n"
    call_end = "\n</tool_call>"
    call_separator = "\n"
    multiple_calls_note = "with the arguments as a JSON object, one <tool_call> block per call."
    BEGIN, END = "<tool_call>", "</tool_call>"

    def scan(self, text: str, start: int, final: bool, names: frozenset[str]) -> tuple[list[Segment], int]:
        segments: list[Segment] = []
        pos = start
        while True:
            begin = text.find(self.BEGIN, pos)
            if begin < 0:
                settled = len(text) - (0 if final else _held_prefix(text, pos, self.BEGIN))
                if settled > pos:
                    segments.append(Segment(text[pos:settled], None))
                return segments, max(settled, pos)
            if begin > pos:
                segments.append(Segment(text[pos:begin], None))
            end = text.find(self.END, begin + len(self.BEGIN))
            if end < 0 and not final:
                return segments, begin  # an open block: wait for its end
            # A block left open at the very end (the model stopped after the JSON) still counts
            # when its JSON is a complete call.
            body_end, block_end = (end, end + len(self.END)) if end >= 0 else (len(text), len(text))
            call = decode_call(text[begin + len(self.BEGIN):body_end], names)
            segments.append(Segment(text[begin:block_end], call))
            pos = block_end
            if end < 0:
                return segments, pos


class Llama3Format(ToolCallFormat):
    name = "llama3"
    arguments_key = "parameters"
    call_begin = ""
    call_end = ""
    call_separator = "; "
    multiple_calls_note = ("with the arguments as a JSON object, and nothing else in the answer. "
                           "Separate several calls with ';'.")
    TAG = "<|python_tag|>"

    def scan(self, text: str, start: int, final: bool, names: frozenset[str]) -> tuple[list[Segment], int]:
        # Calls are either the whole answer (it starts with '{') or everything after the tag;
        # neither is known to be a call until the text ends, so that part waits for the end.
        if start == 0:
            first = len(text) - len(text.lstrip())
            if first == len(text) and not final:
                return [], 0  # only whitespace so far: the answer may still open with '{'
            if text[first:first + 1] == "{":
                return (self._calls(text, 0, names), len(text)) if final else ([], 0)
        tag = text.find(self.TAG, start)
        if tag < 0:
            settled = len(text) - (0 if final else _held_prefix(text, start, self.TAG))
            return ([Segment(text[start:settled], None)] if settled > start else []), max(settled, start)
        if not final:
            return ([Segment(text[start:tag], None)] if tag > start else []), tag
        head = [Segment(text[start:tag], None)] if tag > start else []
        return head + self._calls(text, tag, names, skip=len(self.TAG)), len(text)

    def _calls(self, text: str, at: int, names: frozenset[str], skip: int = 0) -> list[Segment]:
        """Calls one after another from `at` to the end; from the first thing that is not a
        call on, the rest is content (and so is a tag with no call after it)."""
        decoder = json.JSONDecoder()
        segments: list[Segment] = []
        pos = at + skip
        while True:
            while pos < len(text) and text[pos] in " \t\r\n;":
                pos += 1
            if pos == len(text):
                if not segments:  # a tag, or only separators, and no call at all
                    return [Segment(text[at:], None)]
                return segments
            try:
                obj, end = decoder.raw_decode(text, pos)
            except (json.JSONDecodeError, RecursionError):
                obj, end = None, pos
            call = call_from_object(obj, names)
            if call is None:
                rest_from = at if not segments else pos
                return segments + [Segment(text[rest_from:], None)]
            segments.append(Segment(text[at if not segments else pos:end], call))
            pos = end


TOOL_CALL_PARSERS: dict[str, ToolCallFormat] = {f.name: f for f in (Qwen25Format(), Llama3Format())}


class ToolCallStream:
    """Splits a growing output into content to send now and calls completed so far.

    Whitespace next to a call (the newline between two blocks, the space before one) is
    dropped, so that a reply that is only calls has no content; all other text is kept as the
    model wrote it. The one-shot parse is this stream fed the whole text, so streamed and
    non-streamed answers cannot disagree.
    """

    def __init__(self, fmt: ToolCallFormat, names: frozenset[str], max_calls: int | None = None) -> None:
        self._fmt = fmt
        self._names = names
        self._max_calls = max_calls  # parallel_tool_calls: false allows one; calls past it are dropped
        self._text = ""
        self._settled = 0
        self._held_space = ""     # whitespace after content, sent only once more content follows
        self._after_call = False  # the last settled segment was a call
        self.calls: list[ParsedCall] = []

    def feed(self, delta: str, final: bool = False) -> tuple[str, list[ParsedCall]]:
        """Takes the next piece of text (`final`: the output ended); returns the content that
        can be sent now and the calls completed by this piece."""
        self._text += delta
        segments, self._settled = self._fmt.scan(self._text, self._settled, final, self._names)
        content: list[str] = []
        calls: list[ParsedCall] = []
        for seg in segments:
            if seg.call is not None:
                self._held_space = ""
                self._after_call = True
                if self._max_calls is None or len(self.calls) + len(calls) < self._max_calls:
                    calls.append(seg.call)
                continue
            piece = seg.text.lstrip() if self._after_call else seg.text
            if not piece:
                continue
            self._after_call = False
            body = piece.rstrip()
            if body:
                content.append(self._held_space + body)
                self._held_space = ""
            self._held_space += piece[len(body):]
        if final and self._held_space:
            content.append(self._held_space)
            self._held_space = ""
        self.calls.extend(calls)
        return "".join(content), calls


def parse_tool_calls(text: str, fmt: ToolCallFormat, names: frozenset[str], max_calls: int | None = None
                     ) -> tuple[str | None, list[ParsedCall]]:
    """A finished output as (content, calls). Without calls the content is the text unchanged;
    with calls it is the text around them, or None when there is none."""
    content, calls = ToolCallStream(fmt, names, max_calls).feed(text, final=True)
    if not calls:
        return text, []
    return content or None, calls
