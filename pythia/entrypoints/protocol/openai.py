"""OpenAI's API: /v1/models, /v1/completions, /v1/chat/completions, as OpenAI's reference names
them, with SGLang's extensions (top_k, min_p, regex, rid, ...) and the workflow tags.

Request bodies are closed: a field OpenAI has and this server does not serve is refused rather
than ignored. Some accepted fields are refused by the route itself until it serves them."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from pythia.entrypoints.protocol.base import Bool, ClosedModel, Integer, JsonObject, NonEmptyString, NonNegative, \
    OpenModel, Penalty, Positive, ResponseModel, String, TokenId, integer
from pythia.entrypoints.protocol.sglang import LogitBias, MinP, Prompt, RepetitionPenalty, StopStrings, Temperature, \
    TopK, TopP
from pythia.entrypoints.protocol.workflow import WorkflowTags


# ------------------------------------------------------------------ shared request fields

class StreamOptions(OpenModel):
    include_usage: Bool | None = Field(None, description="A last chunk with the usage and no choices")


class JsonSchemaFormat(OpenModel):
    name: String
    description: String | None = None
    schema_: JsonObject = Field(alias="schema", description="The JSON schema the output must satisfy")
    strict: Bool | None = None


class TextFormat(ClosedModel):
    type: Literal["text"]


class JsonObjectFormat(ClosedModel):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(ClosedModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[Union[TextFormat, JsonObjectFormat, JsonSchemaResponseFormat], Field(discriminator="type")]


class SamplingFields(ClosedModel):
    """What both generation routes take: OpenAI's sampling fields and SGLang's extensions."""

    model: String | None = Field(None, description="The served model's name or path; any other is a 404")
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: LogitBias | None = Field(None, description="Token id -> bias in [-100, 100] added to its logit")
    max_tokens: NonNegative | None = None
    n: Positive | None = Field(None, description="Samples (at most --max-n)")
    seed: Integer | None = None
    stop: StopStrings | None = None
    stream: Bool = False
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    user: String | None = None
    response_format: ResponseFormat | None = None
    # SGLang's extensions
    top_k: TopK | None = Field(None, description="-1: no cut; 0 is refused")
    min_p: MinP | None = None
    repetition_penalty: RepetitionPenalty | None = None
    stop_token_ids: list[TokenId] | None = None
    ignore_eos: Bool | None = None
    regex: String | None = None
    json_schema: String | JsonObject | None = None
    ebnf: String | None = None
    min_tokens: NonNegative | None = None
    skip_special_tokens: Bool | None = None
    no_stop_trim: Bool | None = None
    rid: NonEmptyString | None = Field(None, description="SGLang's request id, for /abort_request (n > 1: rid-0, ...)")
    workflow: WorkflowTags | None = None


# ------------------------------------------------------------------ /v1/completions

class CompletionRequest(SamplingFields):
    prompt: (NonEmptyString | Annotated[list[NonEmptyString], Field(min_length=1)] | Prompt
             | Annotated[list[Prompt], Field(min_length=1)]) = Field(
        description="A string, a list of strings, a list of token ids or a list of such lists")
    best_of: integer(ge=0, le=20) | None = Field(None, description="Accepted and ignored")
    echo: Bool | None = Field(None, description="Whether the prompt is repeated before the completion")
    logprobs: integer(ge=0, le=20) | None = Field(
        None, description="Log probabilities of the chosen tokens and of this many most likely ones")
    suffix: String | None = Field(None, description="Accepted and ignored")


class CompletionLogprobs(ResponseModel):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "abort"]


class CompletionChoice(ResponseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: FinishReason | None


class PromptTokensDetails(ResponseModel):
    cached_tokens: int = Field(description="Prompt tokens served from the prefix cache")


class Usage(ResponseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class CompletionResponse(ResponseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class CompletionChunk(ResponseModel):
    """One server-sent event of a streamed completion; the last, with stream_options.include_usage,
    has no choices and the usage."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


# ------------------------------------------------------------------ /v1/chat/completions

class TextPart(OpenModel):
    type: Literal["text"]
    text: String


Content = String | list[TextPart]


class FunctionCall(OpenModel):
    name: String
    arguments: String = Field(description="The arguments as a JSON text")


class ToolCall(OpenModel):
    id: String
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(OpenModel):
    role: Literal["system", "developer"]
    content: Content
    name: String | None = None


class UserMessage(OpenModel):
    role: Literal["user"]
    content: Content
    name: String | None = None


class AssistantMessage(OpenModel):
    role: Literal["assistant"]
    content: Content | None = None
    name: String | None = None
    refusal: String | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(OpenModel):
    role: Literal["tool"]
    content: Content
    tool_call_id: String


def _role(message: Any) -> Any:
    """The message's kind (of a body's dict, or of a model when the body is handed on); a developer
    message is a system message under OpenAI's newer name."""
    role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
    if not isinstance(role, str):
        return None
    return "system" if role == "developer" else role


Message = Annotated[Union[Annotated[SystemMessage, Tag("system")], Annotated[UserMessage, Tag("user")],
                          Annotated[AssistantMessage, Tag("assistant")], Annotated[ToolMessage, Tag("tool")]],
                    Discriminator(_role, custom_error_type="message_role",
                                  custom_error_message="each message needs a role of system, developer, user, "
                                                       "assistant or tool")]


class FunctionDefinition(OpenModel):
    name: Annotated[String, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: String | None = None
    parameters: JsonObject | None = Field(None, description="The arguments' JSON schema")
    strict: Bool | None = None


class Tool(OpenModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(OpenModel):
    name: String


class NamedToolChoice(OpenModel):
    type: Literal["function"]
    function: NamedFunction


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[Message], Field(min_length=1)]
    logprobs: Bool = Field(False, description="Log probabilities of the chosen tokens")
    top_logprobs: integer(ge=0, le=20) | None = Field(
        None, description="With logprobs: this many most likely tokens at each position")
    max_completion_tokens: NonNegative | None = Field(None, description="Wins over max_tokens")
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: Bool | None = None
    metadata: dict[str, String] | None = Field(None, description="Accepted and ignored")
    store: Bool | None = Field(None, description="Accepted and ignored")
    service_tier: String | None = Field(None, description="Accepted and ignored")
    chat_template_kwargs: JsonObject | None = Field(
        None, description="Extra arguments of the model's chat template (not the template itself)")


class TopLogprob(ResponseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(ResponseModel):
    content: list[TokenLogprob] | None


class ChatMessageOut(ResponseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class ChatChoice(ResponseModel):
    index: int
    message: ChatMessageOut
    logprobs: ChatLogprobs | None
    finish_reason: FinishReason | None


class ChatCompletionResponse(ResponseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class FunctionCallDelta(ResponseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(ResponseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class ChatDelta(ResponseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None


class ChatChunkChoice(ResponseModel):
    index: int
    delta: ChatDelta
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None


class ChatCompletionChunk(ResponseModel):
    """One server-sent event of a streamed chat completion; the first of each choice carries the
    role, the last (with stream_options.include_usage) no choices and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


# ------------------------------------------------------------------ /v1/models

class ModelCard(ResponseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    max_model_len: int


class ModelList(ResponseModel):
    object: Literal["list"]
    data: list[ModelCard]
