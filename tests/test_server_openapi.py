"""The live server against its own /openapi.json: schemathesis generates requests from the schema,
valid ones and invalid ones, and checks that none gets a 5xx, that every answer has a documented
media type and matches its documented schema; well-formed requests sent meanwhile all succeed, and
the KV pool is intact afterwards."""

from __future__ import annotations

import threading
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 10  # per operation and mode (invalid bodies on the 6 routes that take one)

# SmolLM2 on 2 cores makes ~10 tokens/s: generated requests may ask for at most this many tokens
# (per sample, and samples per request are capped too), or one example could take minutes.
MAX_TOKENS = 2
MAX_SAMPLES = 2
MAX_TOP_LOGPROBS = 3  # SGLang's top_logprobs_num goes up to the vocabulary: 49152 entries per token


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


# Per route: fields capped at a value, and the token maxima among them, which are set when missing
# or null (the defaults, 128 and up to 1024 tokens, are too many).
CAPS = {
    "/generate": {"top_logprobs_num": MAX_TOP_LOGPROBS},
    "/v1/completions": {"max_tokens": MAX_TOKENS, "min_tokens": MAX_TOKENS, "n": MAX_SAMPLES},
    "/v1/chat/completions": {"max_tokens": MAX_TOKENS, "max_completion_tokens": MAX_TOKENS,
                             "min_tokens": MAX_TOKENS, "n": MAX_SAMPLES},
}
SAMPLING_CAPS = {"max_new_tokens": MAX_TOKENS, "min_new_tokens": MAX_TOKENS, "n": MAX_SAMPLES}
TOKEN_MAXIMA = {"max_tokens", "max_completion_tokens", "max_new_tokens"}


def bounded(path: str, body: Any) -> Any:
    """The generated body with token, sample and top-logprob counts capped. Values of the wrong type
    (the negative mode's) are left as they are, to be refused."""
    if not isinstance(body, dict) or path not in CAPS:
        return body
    body = _capped(body, CAPS[path])
    if path == "/generate":
        params = body.get("sampling_params")
        if params is None:
            params = {}
        body["sampling_params"] = _capped(params, SAMPLING_CAPS) if isinstance(params, dict) else params
    return body


def _capped(obj: dict, caps: dict[str, int]) -> dict:
    obj = dict(obj)
    for key, cap in caps.items():
        value = obj.get(key)
        if value is None and key in TOKEN_MAXIMA:
            obj[key] = cap
        elif isinstance(value, int) and not isinstance(value, bool) and value > cap:
            obj[key] = cap
    return obj


def test_every_route_keeps_its_documented_contract(api_schema, server):
    """Every operation, with generated valid bodies and parameters, then invalid ones, while
    well-formed requests run beside them. Hypothesis runs them directly: schemathesis's pytest
    integration does not run under pytest 9 (it writes the item's private _nodeid), and the schema
    is only known once the server runs."""
    done = threading.Event()
    beside: list[requests.Response] = []

    def well_formed() -> None:  # one at a time, with a pause: beside the run, not instead of it
        while len(beside) < 200 and not done.wait(0.5):
            beside.append(server.post("/generate", json={"text": "Count: 1, 2, 3,", "sampling_params": {
                "max_new_tokens": 4, "temperature": 0, "ignore_eos": True}}))

    worker = threading.Thread(target=well_formed)
    worker.start()
    failures = []
    try:
        for result in api_schema.get_all_operations():
            operation = result.ok()
            # Invalid input needs something to be invalid: a body (path parameters are any string).
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if len(operation.body) else [])
            for mode in modes:
                try:
                    run_examples(operation, mode)
                except Exception as e:  # every operation gets its turn; all failures are reported at the end
                    failures.append(f"{operation.label} ({mode.value}): {type(e).__name__}: {e}")
    finally:
        done.set()
        worker.join()
    assert not failures, "\n\n".join(failures)
    assert beside and all(r.status_code == 200 and r.json()["meta_info"]["completion_tokens"] == 4
                          for r in beside), [r.text for r in beside if r.status_code != 200][:3]
    server.assert_no_leaks()


def run_examples(operation, mode: GenerationMode) -> None:
    # Deterministic (the same examples every run), no example database, no shrinking: a bounded run.
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck),
                         print_blob=False)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def examples(case):
        case.body = bounded(case.operation.path, case.body)
        case.call_and_validate(checks=CHECKS, timeout=120)

    examples()


def test_the_schema_documents_each_operation_once_with_its_body_and_media_types(server):
    doc = server.get("/openapi.json").json()
    operations = {(method.upper(), path): op for path, ops in doc["paths"].items() for method, op in ops.items()}
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
    for key in [("POST", "/generate"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions"),
                ("POST", "/v1/workflows"), ("POST", "/abort_request"), ("POST", "/concate_and_append_request")]:
        ref = operations[key]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], (key, ref)
    for key in [("GET", "/metrics"), ("GET", "/health"), ("GET", "/health_generate"), ("POST", "/flush_cache")]:
        assert list(operations[key]["responses"]["200"]["content"]) == ["text/plain"], key
    for key in [("POST", "/generate"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions")]:
        assert set(operations[key]["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
        assert operations[key]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse")
    # The legacy aliases are served but not documented twice.
    assert ("GET", "/get_model_info") not in operations and ("GET", "/get_server_info") not in operations
    assert server.get("/get_model_info").json() == server.get("/model_info").json()
