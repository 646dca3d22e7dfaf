"""Google Gemini upstream: OpenAI chat requests out, `streamGenerateContent` SSE back as OpenAI.

Translation (reference/providers.md §1.4):

- Out: the model is in the path (`/v1beta/models/{model}:streamGenerateContent?alt=sse`)
  and the key in `x-goog-api-key`. System and developer messages become
  `systemInstruction`; the rest become `contents` of `parts` with roles `user` and
  `model` (consecutive turns of one role merged). Assistant `tool_calls` become
  `functionCall` parts with their arguments as an *object*; `tool` messages become
  `functionResponse` parts, named by looking up the call they answer. Tools become
  `functionDeclarations`, `tool_choice` a `functionCallingConfig` mode, and sampling
  fields a `generationConfig`.
- Back: each SSE event is a whole `GenerateContentResponse` fragment with no
  terminator; text parts are content, `functionCall` parts (arguments object) become
  OpenAI `tool_calls` with JSON-string arguments and generated `call_` ids, and the
  last chunk's `finishReason` is mapped (`STOP` after calls is `tool_calls`).
  A prompt refused by the safety system is a 200 with `promptFeedback.blockReason` and
  no candidates; a safety finish stops a completion: both are the `content_filter`
  outcome.
- Not streamed (`:generateContent`), the answer is one `GenerateContentResponse`,
  the same shape as a stream chunk, and is read by the same code.
- Errors are `google.rpc.Status` JSON; the wait is a `RetryInfo.retryDelay` in the
  body; a wrong key is a 400 with reason `API_KEY_INVALID` (→ `auth`), and a per-day
  quota a 429 with no `RetryInfo` (→ `insufficient_quota`, since waiting will not help).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from router.core.outcomes import Outcome, classify_status
from router.core.policy import Deployment
from router.server.adapters.base import (
    Adapter,
    Piece,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    Usage,
    json_or_none,
    openai_error_body,
)
from router.server.adapters.chat_history import (
    Image,
    arguments_object,
    content_parts,
    text_of,
    tool_names,
)
from router.server.adapters.filters import filtered_error
from router.server.adapters.sse import SseEvent
from router.server.retry_after import retry_after_s

__all__ = ["GeminiAdapter", "GeminiDecoder", "to_gemini_request"]

FINISH_REASONS: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
"""Finish reasons that end an answer normally; the filter reasons are below."""

FILTER_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
)

_CODES: Mapping[str, str] = {
    "RESOURCE_EXHAUSTED": "rate_limit_exceeded",
    "NOT_FOUND": "model_not_found",
    "PERMISSION_DENIED": "permission_denied",
    "UNAVAILABLE": "overloaded",
    "INTERNAL": "server_error",
    "DEADLINE_EXCEEDED": "timeout",
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "insufficient_quota",
}
"""OpenAI-style codes for `google.rpc.Code` names, for clients reading `error.code`."""

_STREAM_OUTCOMES: Mapping[str, Outcome] = {
    "RESOURCE_EXHAUSTED": Outcome.RATE_LIMITED,
    "UNAVAILABLE": Outcome.OVERLOADED,
    "DEADLINE_EXCEEDED": Outcome.TIMEOUT,
}

_SCHEMA_DROPPED = frozenset({"$schema", "additionalProperties", "strict", "$id", "$comment"})
"""JSON-schema keys Gemini's OpenAPI-subset `parameters` refuses."""


def _schema(value: Any) -> Any:
    """A JSON schema without the keys Gemini refuses, recursively."""
    if isinstance(value, list):
        return [_schema(item) for item in value]
    if not isinstance(value, Mapping):
        return value
    return {k: _schema(v) for k, v in value.items() if k not in _SCHEMA_DROPPED}


def _text_part(text: str) -> dict[str, Any]:
    return {"text": text}


def _image_part(image: Image) -> dict[str, Any]:
    if image.data is not None:
        return {"inlineData": {"mimeType": image.media_type, "data": image.data}}
    return {"fileData": {"mimeType": image.media_type, "fileUri": image.url}}


def _parts(content: Any) -> list[dict[str, Any]]:
    return content_parts(content, _text_part, _image_part)


def _response_object(content: Any) -> dict[str, Any]:
    """A tool result as the object `functionResponse.response` must be."""
    text = text_of(content)
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def _contents(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    names = tool_names(messages)
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        if role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            response = {
                "name": names.get(call_id, call_id),
                "response": _response_object(message.get("content")),
            }
            parts, role = [{"functionResponse": response}], "user"
        elif role == "assistant":
            parts, role = _parts(message.get("content")), "model"
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                parts.append(
                    {
                        "functionCall": {
                            "name": str(function.get("name", "")),
                            "args": arguments_object(function.get("arguments")),
                        }
                    }
                )
        else:
            parts, role = _parts(message.get("content")), "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, Mapping):
        name = str((choice.get("function") or {}).get("name", ""))
        calling: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [name]}
    elif choice in ("auto", "none", "required"):
        calling = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    else:
        return None
    return {"functionCallingConfig": calling}


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if tokens:
        config["maxOutputTokens"] = tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, Mapping):
            config["responseJsonSchema"] = dict(schema)
    return config


def to_gemini_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The `GenerateContentRequest` for an OpenAI chat body."""
    system, contents = _contents(list(body.get("messages") or ()))
    request: dict[str, Any] = {"contents": contents}
    if any(system):
        request["systemInstruction"] = {
            "parts": [{"text": "\n\n".join(part for part in system if part)}]
        }
    tools = body.get("tools")
    if tools:
        declarations = []
        for tool in tools:
            function = tool["function"]
            declaration: dict[str, Any] = {
                "name": function["name"],
                "description": function.get("description", ""),
            }
            if function.get("parameters"):
                declaration["parameters"] = _schema(function["parameters"])
            declarations.append(declaration)
        request["tools"] = [{"functionDeclarations": declarations}]
        config = _tool_config(body.get("tool_choice"))
        if config is not None:
            request["toolConfig"] = config
    generation = _generation_config(body)
    if generation:
        request["generationConfig"] = generation
    return request


def _status_error(error: Mapping[str, Any], status: int) -> tuple[Outcome, dict[str, Any]]:
    """The outcome and OpenAI envelope of one `google.rpc.Status`."""
    name = str(error.get("status") or "")
    message = str(error.get("message") or f"upstream answered HTTP {status}")
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reasons = {str(d.get("reason")) for d in details if isinstance(d, Mapping)}
    quota_ids = {
        str(v.get("quotaId", ""))
        for d in details
        if isinstance(d, Mapping)
        for v in d.get("violations") or ()
        if isinstance(v, Mapping)
    }
    retry_info = any(isinstance(d, Mapping) and "retryDelay" in d for d in details)
    code = _CODES.get(name, name.lower() or None)
    if "API_KEY_INVALID" in reasons:
        code = "invalid_api_key"
    elif "exceeds the maximum number of tokens" in message:
        code = "context_length_exceeded"
    elif name == "RESOURCE_EXHAUSTED" and not retry_info and any("PerDay" in q for q in quota_ids):
        code = "insufficient_quota"
    outcome = classify_status(status, error_code=code)
    if code == "invalid_api_key" or name in ("PERMISSION_DENIED", "FAILED_PRECONDITION"):
        outcome = Outcome.AUTH
    return outcome, openai_error_body(message, name or "upstream_error", code)


class GeminiDecoder(StreamDecoder):
    """`GenerateContentResponse` chunks to pieces; the stream simply ends after the last."""

    def __init__(self) -> None:
        super().__init__()
        self._calls = 0

    def feed(self, event: SseEvent) -> list[Piece]:
        """Text and function-call parts, the finish reason, usage, blocks and errors."""
        data = json_or_none(event.data.encode("utf-8"))
        if not isinstance(data, dict):
            self.malformed += 1
            return []
        return self.whole(data)

    def whole(self, document: dict[str, Any]) -> list[Piece]:
        """One `GenerateContentResponse`: a stream chunk, or the whole non-streamed answer."""
        data = document
        error = data.get("error")
        if isinstance(error, Mapping):
            name = str(error.get("status") or "")
            _, body = _status_error(error, int(error.get("code") or 500))
            self.error = UpstreamError(_STREAM_OUTCOMES.get(name, Outcome.SERVER), 200, body)
            return []
        if isinstance(data.get("modelVersion"), str):
            self.model = data["modelVersion"]
        self._usage(data.get("usageMetadata"))
        feedback = data.get("promptFeedback")
        if isinstance(feedback, Mapping) and feedback.get("blockReason"):
            self.error = filtered_error("Gemini", f"prompt blocked ({feedback['blockReason']})")
            return []
        pieces: list[Piece] = []
        for candidate in data.get("candidates") or ():
            if isinstance(candidate, Mapping) and candidate.get("index", 0) == 0:
                pieces.extend(self._candidate(candidate))
        return pieces

    def _usage(self, metadata: Any) -> None:
        if isinstance(metadata, Mapping):
            output = int(metadata.get("candidatesTokenCount") or 0)
            output += int(metadata.get("thoughtsTokenCount") or 0)
            self.usage = Usage(int(metadata.get("promptTokenCount") or 0), output)

    def _candidate(self, candidate: Mapping[str, Any]) -> list[Piece]:
        pieces: list[Piece] = []
        content = candidate.get("content")
        for part in (content.get("parts") or ()) if isinstance(content, Mapping) else ():
            if not isinstance(part, Mapping) or part.get("thought"):
                continue
            if isinstance(part.get("text"), str) and part["text"]:
                pieces.append(Piece({"content": part["text"]}, tokens=1))
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                pieces.append(self._call(call))
        reason = candidate.get("finishReason")
        if isinstance(reason, str):
            self.finished = True
            if reason in FILTER_REASONS:
                self.error = filtered_error("Gemini", f"finishReason {reason}")
            elif reason == "MALFORMED_FUNCTION_CALL":
                body = openai_error_body(
                    "Gemini produced a malformed function call.", "server_error"
                )
                self.error = UpstreamError(Outcome.SERVER, None, body)
            else:
                finish = "tool_calls" if self._calls else FINISH_REASONS.get(reason, "stop")
                pieces.append(Piece(finish_reason=finish))
        return pieces

    def _call(self, call: Mapping[str, Any]) -> Piece:
        """A whole function call as one OpenAI tool-call delta (Gemini sends it whole)."""
        index = self._calls
        self._calls += 1
        call_id = call.get("id") or f"call_{uuid.uuid4().hex[:24]}"
        arguments = json.dumps(call.get("args") or {}, separators=(",", ":"))
        delta = {
            "index": index,
            "id": str(call_id),
            "type": "function",
            "function": {"name": str(call.get("name", "")), "arguments": arguments},
        }
        return Piece({"tool_calls": [delta]}, tokens=1)


class GeminiAdapter(Adapter):
    """generativelanguage.googleapis.com (`protocol: gemini`)."""

    protocol: ClassVar[str] = "gemini"

    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The `GenerateContentRequest`, authenticated with `x-goog-api-key`, to
        `:streamGenerateContent` (SSE) or `:generateContent` (one JSON response)."""
        base = deployment.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1")) and "/publishers/" not in base:
            base += "/v1beta"  # a Vertex AI base URL (…/publishers/google) is complete as it is
        model = quote(deployment.model.removeprefix("models/"), safe="~")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{base}/models/{model}:{action}"
        accept = "text/event-stream" if stream else "application/json"
        headers = {"Content-Type": "application/json", "Accept": accept}
        if deployment.api_key is not None:
            headers["x-goog-api-key"] = deployment.api_key.get_secret_value()
        return UpstreamRequest(url, headers, to_gemini_request(body))

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """A `google.rpc.Status` as an outcome; the wait from `RetryInfo` in the body."""
        body = json_or_none(raw)
        wait = retry_after_s(headers, body, now_epoch=time.time())
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            message = f"upstream answered HTTP {status} without an API error body"
            return UpstreamError(
                classify_status(status), status, openai_error_body(message, "upstream_error"), wait
            )
        outcome, envelope = _status_error(error, status)
        return UpstreamError(outcome, status, envelope, wait)

    def decoder(self) -> StreamDecoder:
        """A fresh Gemini chunk decoder."""
        return GeminiDecoder()
