"""Anthropic-compatible ingress: `POST /v1/messages`, so Anthropic-SDK clients use the same routes.

Theory of operation: the gateway has one internal request shape, OpenAI's chat body,
which every egress adapter reads. This module translates at the edge only:

- In: an Anthropic Messages body becomes an OpenAI chat body (`to_chat_body`) — the
  top-level `system` a system message, `tool_use` blocks assistant `tool_calls` with
  JSON-string arguments, `tool_result` blocks `tool` messages (placed before the rest of
  their user turn, as OpenAI requires), `input_schema` tools function tools, `tool_choice`
  `any` → `required`, `stop_sequences` → `stop`. It is then validated and sized by the
  same `read_chat` as the OpenAI ingress, so both doors refuse the same bad input and
  route the same good input (`model` names a route).
- Out: the engine's terminal decision becomes an Anthropic `message`
  (`to_message`), or, when streaming, `AnthropicStream` renders the serving attempt's
  OpenAI pieces as `message_start`, `content_block_*`, `message_delta`, `message_stop`
  events. It is a `ClientStream`, so holding back the first bytes for a transparent
  failover works exactly as for OpenAI clients.
- Errors use Anthropic's envelope `{"type": "error", "error": {"type", "message"}}`
  with the type Anthropic gives the status; after the first byte, an `event: error`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from router.core.decisions import CompleteRequest, FailRequest
from router.core.policy import Policy
from router.server.adapters.base import Piece, Usage
from router.server.adapters.chat_history import text_of
from router.server.client_context import client_context
from router.server.driver import Call, Terminal
from router.server.errors import ClientError
from router.server.fingerprints import PromptFingerprints
from router.server.ingress import chat_from_body
from router.server.metrics import Metrics
from router.server.reload import Drivers
from router.server.stream import DEPLOYMENT_HEADER, ClientStream

__all__ = [
    "AnthropicStream",
    "anthropic_error_body",
    "anthropic_routes",
    "to_chat_body",
    "to_message",
]

_log = logging.getLogger(__name__)

REASON_HEADER = "x-blastradius-reason"
"""The engine's reason on an error (the same header the OpenAI ingress sends)."""

STOP_REASONS: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI finish reasons as Anthropic stop reasons."""

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_TOOL_CHOICES: Mapping[str, str] = {"auto": "auto", "any": "required", "none": "none"}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error envelope, typed by status as Anthropic types its own errors."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        anthropic_error_body(status, message), status=status, headers=dict(headers or {})
    )


def _message_of(body: Mapping[str, Any]) -> str:
    """The message of an OpenAI error envelope (what the adapters produce)."""
    error = body.get("error")
    return str(error.get("message") or "") if isinstance(error, Mapping) else ""


def _bad(message: str) -> ClientError:
    return ClientError(message)


# -- in: Anthropic request → OpenAI chat body ------------------------------------------------


def _image_part(block: Mapping[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise _bad("an image block needs a 'source' object")
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    else:
        url = str(source.get("url", ""))
    return {"type": "image_url", "image_url": {"url": url}}


def _user_turn(where: str, content: list[Any]) -> list[dict[str, Any]]:
    """One user turn: its tool results as `tool` messages first, then the rest."""
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "tool_result":
            result = text_of(block.get("content"))
            if block.get("is_error"):
                result = f"Error: {result}"
            tools.append(
                {
                    "role": "tool",
                    "tool_call_id": str(block.get("tool_use_id", "")),
                    "content": result,
                }
            )
        elif kind is None:
            raise _bad(f"{where}.content[{j}] must be an object with a string 'type'")
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_turn(content: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {}, separators=(",", ":"))
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": arguments},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: must be a non-empty array")
    out: list[dict[str, Any]] = []
    system = text_of(body.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise _bad(f"{where}: must be an object with role 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
        elif not isinstance(content, list):
            raise _bad(f"{where}.content: must be a string or an array of content blocks")
        elif message["role"] == "user":
            out.extend(_user_turn(where, content))
        else:
            out.append(_assistant_turn(content))
    return out


def _tools(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools: must be an array")
    functions = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            raise _bad(f"tools.{k}: must be an object with a string 'name'")
        if "input_schema" not in tool:
            continue  # a server tool (web search, …): nothing the gateway can route
        function = {
            "name": tool["name"],
            "description": str(tool.get("description") or ""),
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        functions.append({"type": "function", "function": function})
    if functions:
        chat["tools"] = functions
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and functions:
        kind = choice.get("type")
        if kind == "tool":
            chat["tool_choice"] = {
                "type": "function",
                "function": {"name": str(choice.get("name"))},
            }
        elif kind in _TOOL_CHOICES:
            chat["tool_choice"] = _TOOL_CHOICES[str(kind)]
        if choice.get("disable_parallel_tool_use"):
            chat["parallel_tool_calls"] = False


def to_chat_body(body: Any) -> dict[str, Any]:
    """The gateway's internal (OpenAI) chat body for an Anthropic Messages body."""
    if not isinstance(body, Mapping):
        raise ClientError("The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model: must be a non-empty string naming a route")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _bad("max_tokens: a positive integer is required")
    chat: dict[str, Any] = {"model": model, "messages": _messages(body), "max_tokens": max_tokens}
    _tools(body, chat)
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    return chat


# -- out: OpenAI completion → Anthropic message ---------------------------------------------


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = {"arguments": function.get("arguments")}
    return {
        "type": "tool_use",
        "id": str(call.get("id", "")),
        "name": str(function.get("name", "")),
        "input": arguments if isinstance(arguments, dict) else {"value": arguments},
    }


def to_message(completion: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """An Anthropic `message` for the gateway's assembled `chat.completion`."""
    choice = completion["choices"][0]
    message = choice["message"]
    content: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    content.extend(_tool_use(call) for call in message.get("tool_calls") or ())
    usage = completion.get("usage") or {}
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": completion.get("model", ""),
        "content": content,
        "stop_reason": STOP_REASONS.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": int(usage.get("prompt_tokens") or 0),
            "output_tokens": int(usage.get("completion_tokens") or 0),
        },
    }


def _event(name: str, payload: Mapping[str, Any]) -> bytes:
    data = json.dumps({"type": name, **payload}, separators=(",", ":"))
    return f"event: {name}\ndata: {data}\n\n".encode()


class AnthropicStream(ClientStream):
    """A streamed answer as Anthropic SSE events, fed by OpenAI pieces.

    Only the bytes differ from `ClientStream`: the hold-back, the commit point and the
    delivered count are the base class's, so failover behaves the same for both doors.
    Blocks open in order: a text delta opens (or continues) a text block, a tool-call
    fragment with a new index opens a `tool_use` block, whose later argument fragments
    are `input_json_delta`s addressed to its block index.
    """

    def __init__(
        self,
        request: web.Request,
        *,
        message_id: str,
        input_tokens: int,
        hold_tokens: int = 0,
        on_gone: Callable[[], None] = lambda: None,
        keep_said: bool = False,
    ) -> None:
        super().__init__(
            request,
            completion_id=message_id,
            created=0,
            include_usage=False,
            hold_tokens=hold_tokens,
            on_gone=on_gone,
            keep_said=keep_said,
        )
        self._input_tokens = input_tokens
        self._blocks = 0
        self._open: str | None = None
        self._tool_blocks: dict[int, int] = {}
        self._stop_reason = "end_turn"

    async def finish(self, usage: Usage) -> web.StreamResponse:
        """Close the open block, then `message_delta` (stop reason, usage), `message_stop`."""
        if not self.committed:
            await self._commit()
        await self._write(self._close_block())
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        billed = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        await self._write(_event("message_delta", {"delta": delta, "usage": billed}))
        await self._write(_event("message_stop", {}))
        return await self._close()

    async def fail(self, body: Mapping[str, Any]) -> web.StreamResponse:
        """An in-band `event: error` (the Anthropic SDK raises it) instead of `message_stop`."""
        message = _message_of(body) or "upstream failed mid-answer"
        await self._write(_event("error", {"error": {"type": "api_error", "message": message}}))
        return await self._close()

    async def _commit(self) -> None:
        await self._start_response()
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        await self._write(_event("message_start", {"message": message}))
        pieces, self._buffer = self._buffer, []
        self._buffered_tokens = 0
        for piece in pieces:
            await self._send(piece)

    def _encode(self, piece: Piece) -> bytes:
        return b"".join(self._render(piece))

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._blocks - 1})

    def _open_block(self, kind: str, block: Mapping[str, Any]) -> bytes:
        closed = self._close_block()
        self._open = kind
        self._blocks += 1
        return closed + _event(
            "content_block_start", {"index": self._blocks - 1, "content_block": dict(block)}
        )

    def _render(self, piece: Piece) -> list[bytes]:
        out: list[bytes] = []
        delta = piece.delta
        for field in ("content", "refusal"):
            text = delta.get(field)
            if isinstance(text, str) and text:
                if self._open != "text":
                    out.append(self._open_block("text", {"type": "text", "text": ""}))
                text_delta = {"type": "text_delta", "text": text}
                out.append(
                    _event("content_block_delta", {"index": self._blocks - 1, "delta": text_delta})
                )
        for call in delta.get("tool_calls") or ():
            out.extend(self._tool_fragment(call))
        if piece.finish_reason is not None:
            self._stop_reason = STOP_REASONS.get(piece.finish_reason, "end_turn")
        return out

    def _tool_fragment(self, call: Mapping[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{self._id}_{index}"),
                "name": str(function.get("name", "")),
                "input": {},
            }
            out.append(self._open_block("tool_use", block))
            self._tool_blocks[index] = self._blocks - 1
        arguments = function.get("arguments")
        if arguments:
            json_delta = {"type": "input_json_delta", "partial_json": str(arguments)}
            out.append(
                _event(
                    "content_block_delta", {"index": self._tool_blocks[index], "delta": json_delta}
                )
            )
        return out


# -- the handler -------------------------------------------------------------------------


def _tenant(request: web.Request, policy: Policy) -> str:
    """The tenant: `x-api-key` (what the Anthropic SDK sends) or a bearer token."""
    if not policy.tenants:
        return ""
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    tenant = policy.tenant_for_key(key) if key else None
    if tenant is None:
        raise ClientError("invalid x-api-key", status=401)
    return tenant


async def _answer(call: Call, decision: Terminal) -> web.StreamResponse:
    sink = call.sink
    message_id = f"msg_{call.id}"
    if isinstance(decision, CompleteRequest):
        result = call.results[decision.attempt_id]
        if sink is not None:
            return await sink.finish(call.answer_usage(decision.attempt_id))
        assert result.completion is not None
        return web.json_response(
            to_message(result.completion, message_id),
            headers={DEPLOYMENT_HEADER: decision.served_by},
        )
    headers = {REASON_HEADER: decision.reason.value}
    if isinstance(decision, FailRequest):
        if call.first_error is not None:
            deployment, error = call.first_error
            headers[DEPLOYMENT_HEADER] = deployment
            body: Mapping[str, Any] = error.body
        else:
            message = (
                f"No deployment could answer after {decision.attempts} attempt(s): "
                f"{decision.reason.value}."
            )
            body = {"error": {"message": message}}
        if sink is not None and sink.committed:
            return await sink.fail(body)
        return _error(decision.http_status, _message_of(body), headers)
    if decision.reason.value == "unknown_route":
        message = f"model: `{call.chat.route}` is not a route of this gateway"
    else:
        message = f"The gateway refused the request: {decision.reason.value.replace('_', ' ')}."
    return _error(decision.http_status, message, headers)


async def _serve(
    request: web.Request,
    drivers: Drivers,
    metrics: Metrics,
    fingerprints: PromptFingerprints | None,
) -> web.StreamResponse:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as too_large:
        raise ClientError(
            f"Request body too large: {too_large.text or 'over the limit'}", status=413
        ) from None
    # After the last await before `driver.run`, as in the OpenAI handler: a reload that
    # retires a driver once it has no calls must not find this request half-way to it.
    driver = drivers.driver
    tenant = _tenant(request, driver.policy)
    try:
        body = orjson.loads(raw)
    except ValueError as problem:
        raise ClientError(f"The request body is not valid JSON: {problem}") from None
    chat = chat_from_body(to_chat_body(body))
    call = driver.open(chat, tenant=tenant, context=client_context(request.headers))
    if fingerprints is not None:
        fingerprints.note(call.id, body)  # the client's own body, as it sent it
    if chat.stream:
        call.sink = AnthropicStream(
            request,
            message_id=f"msg_{call.id}",
            input_tokens=chat.input_tokens,
            hold_tokens=driver.hold_tokens,
            on_gone=lambda: driver.cancel(call),
            keep_said=driver.carries_on,
        )
    started = driver.now()
    decision = await driver.run(call)
    response = await _answer(call, decision)
    metrics.observe_latency(chat.route, driver.now() - started)
    return response


def anthropic_routes(
    drivers: Drivers,
    metrics: Metrics,
    *,
    fingerprints: PromptFingerprints | None = None,
) -> list[web.RouteDef]:
    """`POST /v1/messages` over the current driver, every error in Anthropic's envelope.

    Built by `create_app` with its state passed in (not read from app keys) so this
    module does not import the app module that imports it.
    """

    async def messages(request: web.Request) -> web.StreamResponse:
        try:
            return await _serve(request, drivers, metrics, fingerprints)
        except ClientError as problem:
            return _error(problem.status, problem.message)
        except Exception:
            _log.exception("gateway bug while serving %s %s", request.method, request.path)
            return _error(500, "The gateway failed unexpectedly.")

    return [web.post("/v1/messages", messages)]
