"""Request bodies checked against their models, and pydantic's errors said as one 400 in OpenAI's
format: the field at fault as `param` (`messages[0].content`), the problem in words, no pydantic
internals.

The handler gets a dict, as before the models, with the fields the client sent (none filled in
with defaults, unknown ones of open objects kept), so that its own checks and defaults stay as they
were. The one change is JSON Schema's: an integer may be written 2.0, and arrives as 2."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from pythia.entrypoints.errors import HTTPError, bad_request, read_json_object

# Errors that say the value has the wrong JSON type: where a union's every branch fails with one,
# the message lists what the value could have been.
_TYPE_ERRORS = {"integer_type", "number_type", "string_type", "bool_type", "list_type", "dict_type", "model_type",
                "model_attributes_type", "tuple_type", "none_required"}

_PHRASES = {
    "missing": "is required",
    "integer_type": "must be an integer",
    "number_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "string_unicode": "is not valid Unicode (JSON can carry a lone surrogate, UTF-8 cannot)",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "none_required": "must be null",
    "literal_error": "must be {expected}",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} character(s)",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_pattern_mismatch": "must match {pattern}",
    "extra_forbidden": "is not a known field",
    # A tagged union's errors are reported at its tag field (see _located).
    "union_tag_invalid": "must be one of {expected_tags}",
    "union_tag_not_found": "is required",
}


async def read_body(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """The JSON object body, checked against `model`; a 400 naming the first problem otherwise."""
    return check_body(await read_json_object(request), model)


def check_body(body: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The body as the handler reads it; a 400 naming the first problem if `model` refuses it."""
    try:
        checked = model.model_validate(body)
    except ValidationError as e:
        raise body_error(e, body) from None
    return checked.model_dump(by_alias=True, exclude_unset=True)


def body_error(exc: ValidationError, body: Any) -> HTTPError:
    """One 400 for the error that got deepest into the body: a union's branches each report one,
    and the branch that matched the value's type gets further than the others."""
    errors = [_located(error, body) for error in exc.errors(include_url=False)]
    depth = max(len(path) for path, _ in errors)
    deepest = [(path, error) for path, error in errors if len(path) == depth]
    specific = [(path, error) for path, error in deepest if error["type"] not in _TYPE_ERRORS]
    path, first = (specific or deepest)[0]
    param = _param(path)
    if specific:
        phrase = _phrase(first)
    else:  # every branch of a union refused the value's type: say what it could have been
        phrases = list(dict.fromkeys(_phrase(error) for at, error in deepest if at == path))
        phrase = phrases[0] + "".join(" or " + p.removeprefix("must be ") for p in phrases[1:])
    if first["type"] in _PHRASES:
        message = f"{param} {phrase}" if param else phrase
        if first["type"] in ("too_short", "too_long"):
            if first["ctx"].get("min_length") != 1:
                message += f", got {first['ctx']['actual_length']}"
        elif first["type"] not in ("missing", "union_tag_not_found"):
            message += f", got {_shown(first['input'])}"
    else:  # the models' own messages (unknown fields, token ids, ...) are whole sentences
        message = f"{param}: {phrase}" if param else phrase
    return bad_request(message, param)


def _located(error: dict[str, Any], body: Any) -> tuple[tuple, dict[str, Any]]:
    """(the path in the body, the error); a tagged union's error moves to its tag field, and the value
    shown is the tag's."""
    path = _path(error["loc"], body, error["type"] == "missing")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path = (*path, error["ctx"]["discriminator"].strip("'"))
        error = {**error, "input": error["ctx"].get("tag")}
    return path, error


def _path(loc: tuple, body: Any, missing: bool) -> tuple:
    """The error's location in the body. Pydantic's has the names of union branches in it too
    (`text.list[str].0`): a name that is not a key of the object there is one of those."""
    path, here = [], body
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(here, list) and 0 <= part < len(here):
            path.append(part)
            here = here[part]
        elif isinstance(part, str) and isinstance(here, dict) and part in here:
            path.append(part)
            here = here[part]
        elif missing and i == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _param(path: tuple) -> str | None:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _phrase(error: dict[str, Any]) -> str:
    if error["type"] in ("too_short", "string_too_short") and error["ctx"]["min_length"] == 1:
        return "must be a non-empty list" if error["type"] == "too_short" else "must not be empty"
    template = _PHRASES.get(error["type"])
    if template is None:
        return error["msg"]
    # Bounds of a number come as floats: 100, not 100.0.
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in error.get("ctx", {}).items()}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return error["msg"]


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
