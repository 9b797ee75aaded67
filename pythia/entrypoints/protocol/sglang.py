"""SGLang's native API: /generate with its sampling_params, and the model, server and cache routes
the SGLang frontend calls. Field names and defaults are SGLang's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from pythia.entrypoints.protocol.base import Bool, ClosedModel, Integer, JsonObject, NonEmptyString, NonNegative, \
    OpenModel, Penalty, Positive, ResponseModel, String, TokenId, integer, number
from pythia.entrypoints.protocol.workflow import WorkflowTags, WorkflowTagsOut

StopStrings = String | list[String]
Temperature = number(ge=0)
TopP = number(gt=0, le=1)
TopK = integer(ge=-1)
MinP = number(ge=0, le=1)
RepetitionPenalty = number(gt=0, le=2)
# JSON object keys are strings: a token id written in decimal. pydantic would write the key pattern
# as patternProperties, which lets any other key through; propertyNames says what is checked.
LogitBias = Annotated[dict[Annotated[str, Field(pattern=r"^[0-9]+$")], number(ge=-100, le=100)],
                      WithJsonSchema({"type": "object", "propertyNames": {"pattern": "^[0-9]+$"},
                                      "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}})]
Prompt = Annotated[list[TokenId], Field(min_length=1)]


class GenerateSamplingParams(ClosedModel):
    """How to sample; pythia.model_executor.sampling_params.SamplingParams checks what a schema cannot
    (min_new_tokens <= max_new_tokens, one constraint at most, valid patterns, server limits)."""

    unknown_field_noun = "sampling parameter"

    max_new_tokens: NonNegative | None = Field(None, description="Default 128")
    min_new_tokens: NonNegative | None = None
    temperature: Temperature | None = Field(None, description="Below 1e-6: greedy")
    top_p: TopP | None = None
    top_k: TopK | None = Field(None, description="-1: no cut; 0 is refused")
    min_p: MinP | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: RepetitionPenalty | None = None
    stop: StopStrings | None = None
    stop_regex: StopStrings | None = None
    stop_token_ids: list[TokenId] | None = None
    ignore_eos: Bool | None = None
    skip_special_tokens: Bool | None = None
    spaces_between_special_tokens: Bool | None = None
    no_stop_trim: Bool | None = None
    n: Positive | None = Field(None, description="Samples per prompt (at most --max-n)")
    seed: Integer | None = Field(None, description="Folded into 64 bits")
    regex: String | None = None
    json_schema: String | JsonObject | None = Field(None, description="A JSON schema the output must satisfy")
    ebnf: String | None = None
    logit_bias: LogitBias | None = Field(None, description="Token id -> bias added to its logit")
    # SGLang's, accepted for compatibility and ignored: they change nothing here.
    dtype: Any = None
    stream_interval: Any = None
    custom_params: Any = None
    sampling_seed: Any = None


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


class GenerateRequestBody(OpenModel):
    """One prompt or a batch, as text or token ids (exactly one of the two). Unknown fields are
    ignored: SGLang clients send fields (image_data, lora_path, ...) that change nothing here."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [_given("text"), _given("input_ids")]})

    text: NonEmptyString | Annotated[list[NonEmptyString], Field(min_length=1)] | None = None
    input_ids: Prompt | Annotated[list[Prompt], Field(min_length=1)] | None = None
    sampling_params: GenerateSamplingParams | None = None
    rid: String | None = Field(None, description="The request's id, for /abort_request; a batch's get -i-k suffixes")
    stream: Bool = Field(False, description="Server-sent events, cumulative text; one prompt and n = 1 only")
    return_logprob: Bool = False
    logprob_start_len: integer(ge=-1) | None = Field(
        None, description="First prompt position whose logprob is returned; -1 (default): none of the prompt")
    top_logprobs_num: NonNegative | None = None
    return_text_in_logprobs: Bool | None = None
    workflow: WorkflowTags | None = None

    @model_validator(mode="after")
    def _one_prompt_kind(self) -> GenerateRequestBody:
        if (self.text is None) == (self.input_ids is None):
            raise PydanticCustomError("prompt_kind", "give exactly one of text and input_ids")
        return self


# ------------------------------------------------------------------ /generate's answer

# [logprob, token id, token text]: the logprob is null where there is none (the first prompt token),
# the text is null unless return_text_in_logprobs.
LogprobEntry = tuple[float | None, int, str | None]


class FinishReason(ResponseModel):
    type: Literal["stop", "length", "abort"]
    matched: int | str | None = Field(None, description="type stop: the stop token id, string or pattern")
    length: int | None = Field(None, description="type length: max_new_tokens")
    message: str | None = Field(None, description="type abort: why")


class CachedTokensDetails(ResponseModel):
    device: int = Field(description="Of cached_tokens, found in the device pool")
    host: int = Field(description="Of cached_tokens, loaded from the host tier (--enable-hierarchical-cache)")


class GenerateMetaInfo(ResponseModel):
    id: str
    finish_reason: FinishReason | None = Field(description="null until the last event of a stream")
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = Field(description="Prompt tokens served from the prefix cache")
    cached_tokens_details: CachedTokensDetails | None = None
    e2e_latency: float
    workflow: WorkflowTagsOut | None = None
    input_token_logprobs: list[LogprobEntry] | None = None
    output_token_logprobs: list[LogprobEntry] | None = None
    output_token_logprobs_length: int | None = None
    input_top_logprobs: list[list[LogprobEntry] | None] | None = None
    output_top_logprobs: list[list[LogprobEntry] | None] | None = None


class GenerateResponse(ResponseModel):
    """One prompt's result; a batch (or n > 1) answers a list of them. Streamed, each event is one
    of these with the text so far and the logprobs new since the last event."""

    text: str
    output_ids: list[int]
    meta_info: GenerateMetaInfo


# ------------------------------------------------------------------ the other routes

class AbortRequestBody(OpenModel):
    rid: String = Field(description="The request to end; unknown ids are a no-op")


class ConcateAndAppendRequestBody(OpenModel):
    """The SGLang frontend's join(mode="concate_and_append"); a no-op here (see the route)."""

    src_rids: list[Any]
    dst_rid: String


class Success(ResponseModel):
    success: bool


class ModelInfo(ResponseModel):
    model_path: str
    tokenizer_path: str
    is_generation: bool
    served_model_name: str
    architectures: list[str]
    context_length: int
    vocab_size: int
    preferred_sampling_params: JsonObject | None
    has_image_understanding: bool
    has_audio_understanding: bool


class ServerInfo(ResponseModel):
    """The server's flags (--api-key left out), the model's info, the engine's counters."""

    internal_states: list[JsonObject]
    version: str


class Integrity(ResponseModel):
    ok: bool
    error: str | None = None
