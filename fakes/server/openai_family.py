"""Reading an OpenAI-shaped chat request, shared by the OpenAI, Azure OpenAI and Mistral wires.

The three vendors accept the same request body with small differences (Azure takes the
model from the path, Mistral has `tool_choice: "any"` and no `max_completion_tokens` or
`stream_options`). So one reader walks the body, raising `Invalid` with OpenAI's message,
`param` and `code` for the first field that is wrong, and `ChatRules` carries the
differences. What it returns, `ChatRequest`, keeps each message as a `Turn` so vendor
rules that look across messages (tool-call pairing, Mistral's tool-call id format) can
run after the shape is known to be right.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from fakes.server.wire import TOOL_RESULT_MARK, Reply, ToolSpec

__all__ = [
    "OPENAI_TOOL_CHOICES",
    "ROLES",
    "ChatRequest",
    "ChatRules",
    "Invalid",
    "Turn",
    "go_duration",
    "load_body",
    "local_reply",
    "read_chat",
    "type_name",
]

_T = TypeVar("_T")

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
"""The roles OpenAI accepts, in the order its error message lists them."""

OPENAI_TOOL_CHOICES: Mapping[str, str] = MappingProxyType(
    {"none": "none", "auto": "auto", "required": "required"}
)
"""OpenAI's string `tool_choice` values, each already in `Call.tool_choice` words."""

_TOOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class Invalid(Exception):
    """The request is malformed: OpenAI's message, the offending `param` and its `code`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ChatRules:
    """What one vendor accepts beyond the common body.

    `model_required` is False where the path names the model (Azure deployments);
    `tool_choices` maps each accepted string choice to `Call.tool_choice`;
    `token_fields` are the accepted max-token fields, the first present one winning;
    `stream_options` is False where the vendor rejects the field outright.
    """

    model_required: bool = True
    tool_choices: Mapping[str, str] = field(default_factory=lambda: OPENAI_TOOL_CHOICES)
    token_fields: tuple[str, ...] = ("max_completion_tokens", "max_tokens")
    stream_options: bool = True


@dataclass(frozen=True, slots=True)
class Turn:
    """One message: its role, text pieces (for token counting), and tool-call ids.

    `calls` are the ids of an assistant message's tool calls; `answers` is a tool
    message's `tool_call_id`; `prefix` is Mistral's flag on an assistant message the
    answer must carry on from.
    """

    index: int
    role: str
    pieces: tuple[str, ...]
    calls: tuple[str, ...] = ()
    answers: str | None = None
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A well-typed chat body, before vendor rules and before it becomes a `Call`."""

    model: str | None
    turns: tuple[Turn, ...]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    tools: tuple[ToolSpec, ...]
    tool_choice: str
    fields: frozenset[str]

    @property
    def prompt(self) -> str:
        """Every text the client sent, ending with the tool-result mark after a tool result."""
        text = "\n".join(piece for turn in self.turns for piece in turn.pieces)
        return text + TOOL_RESULT_MARK if self.turns[-1].role == "tool" else text


def type_name(value: object) -> str:
    """OpenAI's words for a JSON type in `Invalid type for …` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: object) -> Invalid:
    return Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param,
        "invalid_type",
    )


def _missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _empty(param: str) -> Invalid:
    return Invalid(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param,
        "empty_array",
    )


def load_body(raw: bytes) -> Mapping[str, Any]:
    """The JSON object a chat request carries, or OpenAI's "could not parse" refusal."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise Invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)"
        )
    return body


def read_chat(body: Mapping[str, Any], rules: ChatRules) -> ChatRequest:
    """Check every field a fake relies on, in the order OpenAI reports them."""
    model = _model(body.get("model"), rules)
    turns = _turns(body.get("messages"))
    stream = _stream(body.get("stream"))
    include_usage = _stream_options(body, stream, rules)
    tools = _tools(body.get("tools"))
    return ChatRequest(
        model=model,
        turns=turns,
        stream=stream,
        include_usage=include_usage,
        max_tokens=_max_tokens(body, rules),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools, rules),
        fields=frozenset(body),
    )


def _model(value: object, rules: ChatRules) -> str | None:
    if value is None or value == "":
        if rules.model_required:
            raise Invalid("you must provide a model parameter")
        return None
    if not isinstance(value, str):
        raise _wrong_type("model", "a string", value)
    return value


def _turns(value: object) -> tuple[Turn, ...]:
    if value is None:
        raise _missing("messages")
    if not isinstance(value, list):
        raise _wrong_type("messages", "an array", value)
    if not value:
        raise _empty("messages")
    return tuple(_turn(i, message) for i, message in enumerate(value))


def _turn(index: int, message: object) -> Turn:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _wrong_type(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if role not in ROLES:
        supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
        raise Invalid(
            f"Invalid value: '{role}'. Supported values are: {supported}.",
            f"{where}.role",
            "invalid_value",
        )
    calls, call_pieces = _assistant_calls(where, message) if role == "assistant" else ((), ())
    content = message.get("content")
    if content is None and not (role == "assistant" and calls):
        raise _missing(f"{where}.content")
    pieces = _content(f"{where}.content", content) + call_pieces
    answers = _tool_call_id(where, message) if role == "tool" else None
    return Turn(index, role, pieces, calls, answers, message.get("prefix") is True)


def _content(where: str, content: object) -> tuple[str, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (content,)
    if not isinstance(content, list):
        raise _wrong_type(where, "one of a string or array of objects", content)
    pieces: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise _wrong_type(f"{where}[{i}]", "an object", part)
        if part.get("type") is None:
            raise _missing(f"{where}[{i}].type")
        text = part.get("text", part.get("refusal"))
        if part["type"] in ("text", "refusal"):
            if not isinstance(text, str):
                raise _wrong_type(f"{where}[{i}].{part['type']}", "a string", text)
            pieces.append(text)
    return tuple(pieces)


def _assistant_calls(
    where: str, message: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ids of an assistant message's tool calls, and their names and arguments as text."""
    calls = message.get("tool_calls")
    if calls is None:
        return (), ()
    if not isinstance(calls, list):
        raise _wrong_type(f"{where}.tool_calls", "an array", calls)
    ids: list[str] = []
    pieces: list[str] = []
    for i, call in enumerate(calls):
        at = f"{where}.tool_calls[{i}]"
        if not isinstance(call, dict):
            raise _wrong_type(at, "an object", call)
        function = _required(f"{at}.function", call.get("function"), dict, "an object")
        ids.append(_required(f"{at}.id", call.get("id"), str, "a string"))
        pieces.append(_required(f"{at}.function.name", function.get("name"), str, "a string"))
        pieces.append(
            _required(f"{at}.function.arguments", function.get("arguments"), str, "a string")
        )
    return tuple(ids), tuple(pieces)


def _tool_call_id(where: str, message: Mapping[str, Any]) -> str:
    return _required(f"{where}.tool_call_id", message.get("tool_call_id"), str, "a string")


def _required(param: str, value: object, kind: type[_T], expected: str) -> _T:
    """`value` if it is a `kind`; else OpenAI's missing-parameter or wrong-type refusal."""
    if value is None:
        raise _missing(param)
    if not isinstance(value, kind):
        raise _wrong_type(param, expected, value)
    return value


def _stream(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong_type("stream", "a boolean", value)
    return value


def _stream_options(body: Mapping[str, Any], stream: bool, rules: ChatRules) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not rules.stream_options:
        raise Invalid("Extra inputs are not permitted", "stream_options")
    if not stream:
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    usage = options.get("include_usage", False)
    if not isinstance(usage, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", usage)
    return usage


def _max_tokens(body: Mapping[str, Any], rules: ChatRules) -> int | None:
    for name in rules.token_fields:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, "an integer", value)
        if value < 1:
            raise Invalid(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                name,
                "integer_below_min_value",
            )
        return value
    return None


def _tools(value: object) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("tools", "an array", value)
    if not value:
        raise _empty("tools")
    return tuple(_tool(i, tool) for i, tool in enumerate(value))


def _tool(index: int, tool: object) -> ToolSpec:
    where = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise _wrong_type(where, "an object", tool)
    kind = _required(f"{where}.type", tool.get("type"), str, "a string")
    if kind != "function":
        raise Invalid(
            f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
            f"{where}.type",
            "invalid_value",
        )
    function = _required(f"{where}.function", tool.get("function"), dict, "an object")
    name = _required(f"{where}.function.name", function.get("name"), str, "a string")
    if not name or len(name) > 64 or not set(name) <= _TOOL_NAME_CHARS:
        raise Invalid(
            f"Invalid '{where}.function.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            f"{where}.function.name",
            "invalid_value",
        )
    parameters = function.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _wrong_type(f"{where}.function.parameters", "an object", parameters)
    description = function.get("description", "")
    return ToolSpec(name, description if isinstance(description, str) else "", parameters)


def _tool_choice(value: object, tools: Sequence[ToolSpec], rules: ChatRules) -> str:
    if value is None:
        return "auto"
    if not tools:
        raise Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
            "are specified.",
            "tool_choice",
        )
    choices = rules.tool_choices
    if isinstance(value, str):
        if value not in choices:
            listed = ", ".join(f"'{c}'" for c in choices)
            raise Invalid(
                f"Invalid value: '{value}'. Supported values are: {listed}.",
                "tool_choice",
                "invalid_value",
            )
        return choices[value]
    if not isinstance(value, dict):
        raise _wrong_type("tool_choice", "one of a string or object", value)
    function = value.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise _missing("tool_choice.function.name")
    return f"tool:{name}"


def local_reply(raw: bytes) -> Reply:
    """A Reply for refusals the route gives itself, before the server draws one.

    Its token is a hash of the request body, so the `x-request-id` of a rejected request
    is repeatable without touching the server's seeded generator.
    """
    number = int.from_bytes(hashlib.blake2b(raw, digest_size=16).digest(), "big")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    token = ""
    while len(token) < 24:
        number, digit = divmod(number, 36)
        token += digits[digit]
    now = time.time()
    return Reply(token=token, created=int(now), now_epoch=now)


def go_duration(seconds: float) -> str:
    """A duration the way OpenAI's `x-ratelimit-reset-*` headers write it (Go's `Duration`).

    `0.02` → `20ms`, `1` → `1s`, `360` → `6m0s`, `17.28` → `17.28s`, `3600` → `1h0m0s`.
    """
    millis = max(0, round(seconds * 1000))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
