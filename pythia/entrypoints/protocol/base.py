"""What the request and response models are built from.

JSON's scalar types are checked as the route handlers check them: pydantic's lax mode would take
`true` for an integer and `"1.5"` for a number, its strict mode would refuse `2.0` for an integer,
which JSON Schema calls an integer and SamplingParams accepts. Objects are closed (unknown fields
refused, named in the message) or open (unknown fields accepted and ignored), as the route is today.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, \
    WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("integer_type", "must be an integer")
    if isinstance(value, float):
        if not value.is_integer():  # also NaN and the infinities
            raise PydanticCustomError("integer_type", "must be an integer")
        return int(value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise PydanticCustomError("finite_number", "must be a finite number") from None
    if not math.isfinite(number):  # Python's JSON parser reads NaN and Infinity
        raise PydanticCustomError("finite_number", "must be a finite number")
    return number


def _token_id(value: int) -> int:
    if value < 0:
        raise PydanticCustomError("token_id", "token ids are integers >= 0, got {value}", {"value": value})
    return value


def integer(**bounds: float) -> Any:
    """An integer within `bounds` (ge, gt, le, lt). The bounds go on the int inside the type check,
    where JSON Schema sees them (after it, pydantic would write them as non-standard keywords)."""
    return Annotated[int, Field(**bounds), BeforeValidator(_integer)]


def number(**bounds: float) -> Any:
    """A finite number within `bounds` (ge, gt, le, lt)."""
    return Annotated[float, Field(**bounds), BeforeValidator(_number)]


Integer = integer()
Number = number()
Bool = StrictBool
String = StrictStr
NonEmptyString = Annotated[StrictStr, Field(min_length=1)]
NonNegative = integer(ge=0)
Positive = integer(ge=1)
# The upper end is the model's vocabulary, checked with the request (request_validation).
TokenId = Annotated[int, AfterValidator(_token_id), BeforeValidator(_integer),
                    WithJsonSchema({"type": "integer", "minimum": 0})]
Penalty = number(ge=-2, le=2)
JsonObject = dict[str, Any]


class ClosedModel(BaseModel):
    """An object whose unknown fields are refused, all named in one message: a misspelt field would
    otherwise change nothing and the client would never know."""

    model_config = ConfigDict(extra="forbid")
    unknown_field_noun: ClassVar[str] = "field"  # "unknown {noun}(s): ..."

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {field.alias or name for name, field in cls.model_fields.items()}
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise PydanticCustomError("unknown_fields", "unknown {noun}(s): {names}",
                                          {"noun": cls.unknown_field_noun, "names": ", ".join(unknown)})
        return data


class OpenModel(BaseModel):
    """An object whose unknown fields are accepted and ignored, as the route did before it had a model."""

    model_config = ConfigDict(extra="allow")


class ResponseModel(BaseModel):
    """A response as documented; routes return plain dicts, which may carry fields added later."""
