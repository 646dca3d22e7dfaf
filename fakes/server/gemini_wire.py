"""Google's Gemini API (`generateContent` / `streamGenerateContent`), as `google-genai` reads it.

What makes Gemini its own wire (reference/providers.md §1.4): the model is in the *path*
(`/v1beta/models/{model}:generateContent`) and the key in `x-goog-api-key` or `?key=`;
messages are `contents` of `parts`, with `model` as the assistant role, tool calls as
`functionCall` parts whose `args` is an object, and results as `functionResponse` parts;
tool schemas are OpenAPI-style with upper-case types (`"STRING"`); a stream is SSE `data:`
chunks of whole `GenerateContentResponse`s with no terminator, the last carrying
`finishReason` and `usageMetadata`; errors are `google.rpc.Status` JSON whose retry hint
is a `RetryInfo` *in the body*; and a blocked prompt is a 200 with
`promptFeedback.blockReason` and no candidates.

Deliberate choices where the vendor gives no single answer:

- `ErrorKind.AUTH` is what Gemini really says to a wrong key: **400** `INVALID_ARGUMENT`
  with an `ErrorInfo` of reason `API_KEY_INVALID`. A request with no key at all gets the
  403 `PERMISSION_DENIED` "unregistered callers" answer. Routers must read the reason.
- `ErrorKind.QUOTA` is a 429 `RESOURCE_EXHAUSTED` with a per-day `QuotaFailure` and no
  `RetryInfo` (waiting a few seconds will not help); `RATE_LIMITED` is per-minute with one.
- `ErrorKind.NOT_READY` and `OVERLOADED` are both 503 `UNAVAILABLE`, with different messages.
- `ErrorKind.CONTENT_FILTER` through `error()` is the blocked-prompt 200 too: Gemini has no
  error status for a refused prompt.
- Only the SSE stream (`alt=sse`) is served; the JSON-array stream other callers get
  without it is refused with a 400 naming `alt`.
- `terminator=False` changes nothing: Gemini streams have no terminator to drop.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from fakes.server.wire import (
    TOOL_RESULT_MARK,
    Answer,
    Call,
    ChatHandler,
    ErrorKind,
    Finish,
    Reply,
    StreamEncoder,
    ToolSpec,
    Wire,
    split_directive,
)
from router.core.tokens import count_prompt

__all__ = ["GeminiWire"]

_FINISH_REASONS: Mapping[Finish, str] = {
    Finish.STOP: "STOP",
    Finish.LENGTH: "MAX_TOKENS",
    Finish.TOOL_CALLS: "STOP",
    Finish.CONTENT_FILTER: "SAFETY",
    Finish.CONTEXT: "MAX_TOKENS",
}

_MODES: Mapping[str, str] = {
    "MODE_UNSPECIFIED": "auto",
    "AUTO": "auto",
    "VALIDATED": "auto",
    "ANY": "required",
    "NONE": "none",
}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MODE_TYPE = "google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode"

_PART_FIELDS = (
    "text", "inlineData", "inline_data", "fileData", "file_data", "functionCall",
    "function_call", "functionResponse", "function_response", "executableCode",
    "executable_code", "codeExecutionResult", "code_execution_result",
)  # fmt: skip

_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)

_RATE_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_KEY_INVALID = "API key not valid. Please pass a valid API key."
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_RATE_DOCS = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}


@dataclass(frozen=True, slots=True)
class _Status:
    """How Gemini says one `ErrorKind`: HTTP code, `google.rpc.Code` name, default message,
    and the fixed `details` entries (RetryInfo is added per response)."""

    code: int
    status: str
    message: str
    details: tuple[Mapping[str, Any], ...] = ()


def _quota_failure(quota_id: str, metric: str) -> Mapping[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global"},
            }
        ],
    }


_STATUSES: Mapping[ErrorKind, _Status] = {
    ErrorKind.INVALID_REQUEST: _Status(
        400, "INVALID_ARGUMENT", "Request contains an invalid argument."
    ),
    ErrorKind.CONTEXT_LENGTH: _Status(
        400,
        "INVALID_ARGUMENT",
        "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
    ),
    ErrorKind.AUTH: _Status(
        400,
        "INVALID_ARGUMENT",
        _KEY_INVALID,
        (
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": _KEY_INVALID,
            },
        ),
    ),
    ErrorKind.MODEL_GONE: _Status(404, "NOT_FOUND", "Requested entity was not found."),
    ErrorKind.RATE_LIMITED: _Status(
        429,
        "RESOURCE_EXHAUSTED",
        _RATE_MESSAGE,
        (
            _quota_failure(
                "GenerateRequestsPerMinutePerProjectPerModel", "generate_content_requests"
            ),
            _RATE_DOCS,
        ),
    ),
    ErrorKind.QUOTA: _Status(
        429,
        "RESOURCE_EXHAUSTED",
        _RATE_MESSAGE,
        (
            _quota_failure(
                "GenerateRequestsPerDayPerProjectPerModel", "generate_content_requests_per_day"
            ),
            _RATE_DOCS,
        ),
    ),
    ErrorKind.SERVER: _Status(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    ErrorKind.OVERLOADED: _Status(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    ),
    ErrorKind.NOT_READY: _Status(503, "UNAVAILABLE", "The service is currently unavailable."),
}

_UNREGISTERED_STATUS = _Status(403, "PERMISSION_DENIED", _UNREGISTERED)


class _Invalid(ValueError):
    """A request the API would refuse with 400 `INVALID_ARGUMENT`, naming the field."""


class GeminiWire(Wire):
    """The Gemini API: `generateContent`, `streamGenerateContent?alt=sse`, model listing."""

    protocol: ClassVar[str] = "gemini"

    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """`POST …/models/{model}:{method}` and `GET …/models[/{model}]` under v1beta and v1,
        and under Vertex AI's `…/projects/P/locations/L/publishers/google` prefix."""

        async def generate(request: web.Request) -> web.StreamResponse:
            target, _, method = request.match_info["target"].rpartition(":")
            if method not in ("generateContent", "streamGenerateContent"):
                return _status_response(
                    _STATUSES[ErrorKind.MODEL_GONE], f"Method not found: {method}.", None
                )
            try:
                stream = _wants_stream(method, request)
                call = _parse_call(target, stream, await _json_body(request))
            except _Invalid as problem:
                return self.error(ErrorKind.INVALID_REQUEST, _route_reply(), message=str(problem))
            return await serve(request, call, self)

        async def list_models(request: web.Request) -> web.StreamResponse:
            return _json_response({"models": [_model_info(m) for m in models]})

        async def get_model(request: web.Request) -> web.StreamResponse:
            name = request.match_info["target"]
            if name not in models:
                message = f"models/{name} is not found for API version {request.path.split('/')[1]}"
                return _status_response(_STATUSES[ErrorKind.MODEL_GONE], message, None)
            return _json_response(_model_info(name))

        routes = []
        vertex = "projects/{project:[^/]*}/locations/{location}/publishers/{publisher}"
        for version in ("v1beta", "v1"):
            for prefix in (f"/{version}", f"/{version}/{vertex}"):
                routes += [
                    web.post(f"{prefix}/models/{{target}}", _keyed(generate)),
                    web.get(f"{prefix}/models", _keyed(list_models)),
                    web.get(f"{prefix}/models/{{target}}", _keyed(get_model)),
                ]
        return routes

    def complete(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """One `GenerateContentResponse` with the whole answer and its usage."""
        parts = ([{"text": answer.text}] if answer.pieces else []) + _call_parts(answer)
        candidate = _candidate(parts, _FINISH_REASONS[answer.finish])
        body = _response(call, reply, candidates=[candidate], usage=_usage(answer))
        return _json_response(body)

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """SSE `data:` chunks, each a partial `GenerateContentResponse`."""
        return _ContentStream(call, answer, reply)

    def error(
        self,
        kind: ErrorKind,
        reply: Reply,
        *,
        message: str | None = None,
        retry_after_s: float | None = None,
    ) -> web.Response:
        """`{"error":{"code","message","status","details"}}`; the retry hint is a `RetryInfo`
        detail (Gemini sends no Retry-After header)."""
        if kind == ErrorKind.CONTENT_FILTER:
            return _json_response(_blocked_body(None, reply))
        status = _STATUSES[kind]
        retry = None if kind == ErrorKind.QUOTA else retry_after_s
        return _status_response(status, message or status.message, retry)

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """A 200 with `promptFeedback.blockReason: SAFETY` and no candidates (one SSE chunk
        when the client asked for a stream)."""
        body = _blocked_body(call, reply)
        if call.stream:
            return web.Response(body=_chunk(body), content_type="text/event-stream")
        return _json_response(body)


class _ContentStream(StreamEncoder):
    """A streamed answer: one chunk per token, tool calls whole in one chunk, then the end."""

    def __init__(self, call: Call, answer: Answer, reply: Reply) -> None:
        self._call = call
        self._answer = answer
        self._reply = reply

    def start(self) -> bytes:
        return b""

    def text(self, piece: str) -> bytes:
        return self._parts([{"text": piece}])

    def tools(self) -> bytes:
        return self._parts(_call_parts(self._answer))

    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        candidate = _candidate([{"text": ""}], _FINISH_REASONS[self._answer.finish])
        metadata = _usage(self._answer) if usage else None
        return _chunk(_response(self._call, self._reply, candidates=[candidate], usage=metadata))

    def error(self, kind: ErrorKind, message: str) -> bytes:
        status = _STATUSES.get(kind, _STATUSES[ErrorKind.SERVER])
        return _chunk({"error": {"code": status.code, "message": message, "status": status.status}})

    def malformed(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "\r\n\r\n'

    def _parts(self, parts: list[dict[str, Any]]) -> bytes:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
        return _chunk(_response(self._call, self._reply, candidates=[candidate], usage=None))


def _chunk(body: Mapping[str, Any]) -> bytes:
    """One SSE event as Gemini frames it: `data: <json>` and a CRLF blank line."""
    return f"data: {json.dumps(body, separators=(',', ':'))}\r\n\r\n".encode()


def _response(
    call: Call,
    reply: Reply,
    *,
    candidates: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": candidates}
    if usage is not None:
        body["usageMetadata"] = usage
    body["modelVersion"] = call.model
    body["responseId"] = reply.token
    return body


def _candidate(parts: list[dict[str, Any]], finish_reason: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    candidate["finishReason"] = finish_reason
    candidate["index"] = 0
    if finish_reason == "SAFETY":
        candidate["safetyRatings"] = _safety_ratings()
    return candidate


def _call_parts(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"functionCall": {"name": use.name, "args": dict(use.arguments)}}
        for use in answer.tool_uses
    ]


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens,
        "totalTokenCount": answer.input_tokens + answer.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}],
    }


def _safety_ratings() -> list[dict[str, Any]]:
    """Ratings for a SAFETY stop: dangerous content blocked, the rest negligible."""
    blocked = "HARM_CATEGORY_DANGEROUS_CONTENT"
    return [
        {"category": c, "probability": "HIGH", "blocked": True}
        if c == blocked
        else {"category": c, "probability": "NEGLIGIBLE"}
        for c in _HARM_CATEGORIES
    ]


def _blocked_body(call: Call | None, reply: Reply) -> dict[str, Any]:
    body: dict[str, Any] = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _safety_ratings()}
    }
    if call is not None:
        tokens = call.input_tokens
        body["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
        body["modelVersion"] = call.model
    body["responseId"] = reply.token
    return body


def _status_response(status: _Status, message: str, retry_after_s: float | None) -> web.Response:
    details = list(status.details)
    if retry_after_s is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": _duration(retry_after_s),
            }
        )
    error: dict[str, Any] = {"code": status.code, "message": message, "status": status.status}
    if details:
        error["details"] = details
    return _json_response({"error": error}, status=status.code)


def _json_response(body: Mapping[str, Any], *, status: int = 200) -> web.Response:
    """JSON as Google sends it: pretty-printed, `application/json; charset=UTF-8`."""
    return web.Response(
        status=status,
        text=json.dumps(body, indent=2),
        content_type="application/json",
        charset="UTF-8",
    )


def _duration(seconds: float) -> str:
    """A protobuf Duration in JSON: `34s`, `34.400s` (whole seconds have no fraction)."""
    millis = math.ceil(seconds * 1000)
    whole, fraction = divmod(millis, 1000)
    return f"{whole}s" if not fraction else f"{whole}.{fraction:03d}s"


def _model_info(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "description": f"Fake {model} served by blastradius.",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }


def _keyed(handler: _Handler) -> _Handler:
    """`handler` behind Gemini's key check: `x-goog-api-key` or `?key=`, else the 403 that
    Google gives callers with no identity."""

    async def checked(request: web.Request) -> web.StreamResponse:
        if request.headers.get("x-goog-api-key") or request.query.get("key"):
            return await handler(request)
        return _status_response(_UNREGISTERED_STATUS, _UNREGISTERED, None)

    return checked


def _wants_stream(method: str, request: web.Request) -> bool:
    if method != "streamGenerateContent":
        return False
    if request.query.get("alt") != "sse":
        raise _Invalid("alt: this fake streams only as server-sent events; send alt=sse")
    return True


def _route_reply() -> Reply:
    """A Reply for a refusal the route gives itself (Gemini errors carry no ids)."""
    now = time.time()
    return Reply(token="0" * 24, created=int(now), now_epoch=now)


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise _Invalid(f"Invalid JSON payload received. {problem}") from problem


# --- request parsing ---------------------------------------------------------------------


def _get(body: Mapping[str, Any], camel: str) -> Any:
    """A field by its JSON name or its proto name; Google's parser accepts both."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return body.get(camel, body.get(snake))


def _parse_call(target: str, stream: bool, body: Any) -> Call:
    """Validate a GenerateContentRequest as the API does and read it into a `Call`."""
    if not isinstance(body, dict):
        raise _Invalid("Invalid JSON payload received. Expected an object.")
    model, fault = split_directive(target.removeprefix("models/"))
    contents = _get(body, "contents")
    _need(isinstance(contents, list) and bool(contents), "contents", "contents is not specified")
    turns = [_content_pieces(c, f"contents[{i}]") for i, c in enumerate(contents)]
    system = _get(body, "systemInstruction")
    if system is not None:
        turns.insert(0, _content_pieces(system, "system_instruction"))
    prompt = "\n".join(piece for turn in turns for piece in turn)
    if any(_get(part, "functionResponse") is not None for part in contents[-1]["parts"]):
        prompt += TOOL_RESULT_MARK
    return Call(
        protocol=GeminiWire.protocol,
        model=model,
        stream=stream,
        input_tokens=count_prompt(turns),
        prompt=prompt,
        max_tokens=_max_tokens(_get(body, "generationConfig")),
        tools=_tools(_get(body, "tools")),
        tool_choice=_tool_choice(_get(body, "toolConfig")),
        fault=fault,
        deployment=model,
        carries_on=_carries_on(contents[-1]),
    )


def _carries_on(last: Mapping[str, Any]) -> bool:
    """A final `model` turn with text and no function call is an answer to carry on."""
    parts = last.get("parts") or ()
    return (
        last.get("role") == "model"
        and any(isinstance(part, dict) and part.get("text") for part in parts)
        and not any(isinstance(part, dict) and _get(part, "functionCall") for part in parts)
    )


def _need(condition: bool, field: str, problem: str) -> None:
    """Refuse the request in Google's field-violation words unless `condition` holds."""
    if not condition:
        raise _Invalid(f"* GenerateContentRequest.{field}: {problem}")


def _content_pieces(content: Any, where: str) -> list[str]:
    _need(isinstance(content, dict), where, "must be an object")
    role = content.get("role", "")
    _need(role in ("", "user", "model"), f"{where}.role", "Please use a valid role: user, model.")
    parts = content.get("parts")
    valid = isinstance(parts, list) and bool(parts)
    _need(valid, f"{where}.parts", "contents.parts must not be empty.")
    return [
        piece for j, part in enumerate(parts) for piece in _part_pieces(part, f"{where}.parts[{j}]")
    ]


def _part_pieces(part: Any, where: str) -> list[str]:
    """The prompt text of one part: text, a call's name and args, a response's JSON."""
    _need(
        isinstance(part, dict) and any(field in part for field in _PART_FIELDS),
        f"{where}.data",
        "required oneof field 'data' must have one initialized field",
    )
    text = part.get("text")
    if text is not None:
        _need(isinstance(text, str), f"{where}.text", "must be a string")
        return [text]
    for field in ("functionCall", "functionResponse"):
        value = _get(part, field)
        if value is not None:
            named = isinstance(value, dict) and bool(value.get("name"))
            _need(named, f"{where}.{field}.name", "Name cannot be empty.")
            payload = value.get("args" if field == "functionCall" else "response", {})
            return [value["name"], json.dumps(payload)]
    return []


def _max_tokens(config: Any) -> int | None:
    if config is None:
        return None
    _need(isinstance(config, dict), "generation_config", "must be an object")
    value = _get(config, "maxOutputTokens")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Invalid(
            f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {value!r}"
        )
    return value


def _tools(tools: Any) -> tuple[ToolSpec, ...]:
    """Function declarations as `ToolSpec`s; built-in tools (search, code) are skipped."""
    if tools is None:
        return ()
    _need(isinstance(tools, list), "tools", "must be a list")
    specs = []
    for k, tool in enumerate(tools):
        declarations = _get(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for d, declaration in enumerate(declarations or []):
            named = isinstance(declaration, dict) and bool(declaration.get("name"))
            _need(named, f"tools[{k}].function_declarations[{d}].name", "Name cannot be empty.")
            parameters = declaration.get("parameters") or {}
            schema = _get(declaration, "parametersJsonSchema") or _normalise(parameters)
            description = str(declaration.get("description", ""))
            specs.append(ToolSpec(declaration["name"], description, schema))
    return tuple(specs)


def _normalise(schema: Any) -> Any:
    """An OpenAPI-style Gemini schema in JSON-schema words: `"STRING"` → `"string"`, deeply."""
    if isinstance(schema, list):
        return [_normalise(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _normalise(value) for key, value in schema.items()}
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = kind.lower()
    return out


def _tool_choice(config: Any) -> str:
    if config is None:
        return "auto"
    calling = _get(config, "functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return "auto"
    mode = calling.get("mode", "MODE_UNSPECIFIED")
    if mode not in _MODES:
        raise _Invalid(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            f"(type.googleapis.com/{_MODE_TYPE}), {mode!r}"
        )
    allowed = _get(calling, "allowedFunctionNames") or []
    if mode == "ANY" and allowed:
        return f"tool:{allowed[0]}"
    return _MODES[mode]
