"""The HTTP API's contract: pydantic models of every route's request body and response, by API
(sglang, openai, workflow) and the error body every route answers with (errors). Routes check
their bodies with validation.read_body; openapi puts the models in /openapi.json."""
