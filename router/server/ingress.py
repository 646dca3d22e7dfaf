"""Reading the client's OpenAI chat request: validate it, size it, say what it needs.

Bad input is the client's problem and must never cost an upstream call, so every
field the gateway or an adapter relies on is checked here, and the first problem is
refused with a 400 naming the field (`param`), as OpenAI does. Fields the gateway does
not interpret are passed through to OpenAI-protocol deployments unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from router.core.tokens import count_prompt, count_text
from router.server.errors import ClientError

__all__ = ["ChatRequest", "chat_from_body", "read_chat"]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_TOOL_CHOICES = frozenset({"auto", "none", "required"})


class ChatRequest(NamedTuple):
    """A validated chat request and the facts the engine needs about it (one per client
    request: a named tuple is built in half a frozen dataclass's time)."""

    body: Mapping[str, Any]
    route: str
    stream: bool
    include_usage: bool
    input_tokens: int
    max_output_tokens: int
    needs: frozenset[str]


def _bad(message: str, param: str | None, code: str = "invalid_value") -> ClientError:
    return ClientError(message, param=param, code=code)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _content_pieces(content: Any, where: str, needs: set[str]) -> list[str]:
    if content is None or isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string, an array of content parts or null", where)
    pieces: list[str] = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"{here} must be an object with a string 'type'", here)
        if part["type"] in ("text", "refusal"):
            text = part.get(part["type"])
            if not isinstance(text, str):
                raise _bad(f"{here}.{part['type']} must be a string", f"{here}.{part['type']}")
            pieces.append(text)
        elif part["type"] == "image_url":
            needs.add("vision")
    return pieces


def _tool_calls(calls: Any, where: str) -> list[str]:
    if not isinstance(calls, list):
        raise _bad(f"{where} must be an array", where)
    pieces: list[str] = []
    for j, call in enumerate(calls):
        here = f"{where}[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments", ""), str)
        ):
            raise _bad(
                f"{here} must be {{id, type: 'function', function: {{name, arguments}}}}", here
            )
        pieces += [function["name"], function.get("arguments", "")]
    return pieces


def _messages(body: Mapping[str, Any], needs: set[str]) -> list[list[str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty array", "messages")
    turns: list[list[str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(f"{where} must be an object", where)
        role = message.get("role")
        if role not in _ROLES:
            roles = ", ".join(sorted(_ROLES))
            raise _bad(f"{where}.role must be one of {roles}", f"{where}.role")
        pieces = _content_pieces(message.get("content"), f"{where}.content", needs)
        if role == "assistant" and "tool_calls" in message:
            pieces += _tool_calls(message["tool_calls"], f"{where}.tool_calls")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _bad(f"{where}.tool_call_id must be a string", f"{where}.tool_call_id")
        turns.append(pieces)
    return turns


def _tools(body: Mapping[str, Any], needs: set[str]) -> list[str]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array", "tools")
    pieces: list[str] = []
    for k, tool in enumerate(tools):
        where = f"tools[{k}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad(f"{where} must be {{type: 'function', function: {{name, ...}}}}", where)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _bad(f"{where}.function.parameters must be an object", where)
        pieces += [function["name"], json.dumps(parameters or {})]
    if tools:
        needs.add("tools")
    return pieces


def _tool_choice(body: Mapping[str, Any]) -> None:
    choice = body.get("tool_choice")
    if choice is None or (isinstance(choice, str) and choice in _TOOL_CHOICES):
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _bad(
            "'tool_choice' must be 'auto', 'none', 'required' or "
            "{type: 'function', function: {name}}",
            "tool_choice",
        )


def _max_output(body: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise _bad(f"'{name}' must be a positive integer", name)
        return int(value)
    return 0


def _scalars(body: Mapping[str, Any]) -> None:
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise _bad(f"'{name}' must be a number between {low} and {high}", name)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise _bad("'stop' must be a string or an array of strings", "stop")


def read_chat(raw: bytes) -> ChatRequest:
    """Parse and check a `/v1/chat/completions` body; `ClientError` names the first problem."""
    try:
        body = orjson.loads(raw)
    except ValueError as problem:  # orjson.JSONDecodeError, bad UTF-8 included
        raise ClientError(
            f"We could not parse the JSON body of your request: {problem}", code="invalid_json"
        ) from None
    return chat_from_body(body)


def chat_from_body(body: Any) -> ChatRequest:
    """Check a parsed Chat Completions body (another ingress's translation, or `read_chat`'s)."""
    if not isinstance(body, dict):
        raise ClientError("The request body must be a JSON object.", code="invalid_json")
    route = body.get("model")
    if not isinstance(route, str) or not route:
        raise _bad("'model' must be a non-empty string naming a route", "model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    needs: set[str] = set()
    turns = _messages(body, needs)
    tool_pieces = _tools(body, needs)
    _tool_choice(body)
    _scalars(body)
    format_ = body.get("response_format")
    if format_ is not None:
        if not isinstance(format_, dict) or not isinstance(format_.get("type"), str):
            raise _bad(
                "'response_format' must be an object with a string 'type'", "response_format"
            )
        if format_["type"] != "text":
            needs.add("json")
    if stream:
        needs.add("streaming")
    input_tokens = count_prompt(turns) + sum(count_text(piece) for piece in tool_pieces)
    return ChatRequest(
        body=body,
        route=route,
        stream=stream,
        include_usage=bool(options and options.get("include_usage")),
        input_tokens=input_tokens,
        max_output_tokens=_max_output(body),
        needs=frozenset(needs),
    )
