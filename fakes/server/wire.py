"""What every vendor's wire module gives the fake server, and what the server gives back.

The fake server decides *what happens* to an attempt (the behaviour model, the chaos
faults, timing); a wire module decides only *how a vendor says it*: which paths it
serves, how it reads a request into a `Call`, and the exact bytes of an answer, a
stream or an error. Keeping the two apart is what lets one fault ("rate limited, come
back in 3 s") come out as OpenAI's `x-ratelimit-*` headers, Anthropic's RFC 3339
resets, Gemini's `RetryInfo` body and Bedrock's `ThrottlingException` without the
fault logic knowing any of them.

A fault can be chosen per request through the model name, so any client can trigger
it with ordinary configuration: `gpt-4o~rate_limited` asks the fake serving `gpt-4o`
to answer with a rate limit. `split_directive` does that split for every wire.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from aiohttp import web

__all__ = [
    "DIRECTIVE_SEPARATOR",
    "Answer",
    "Call",
    "ChatHandler",
    "ErrorKind",
    "Finish",
    "RateSnapshot",
    "Reply",
    "StreamEncoder",
    "ToolSpec",
    "ToolUse",
    "Wire",
    "split_directive",
]

DIRECTIVE_SEPARATOR = "~"
"""Separates a model name from a per-request fault: `gpt-4o~stream_cut`. Unreserved in
URLs, so it survives Gemini's and Bedrock's model-in-path routes unescaped."""


class ErrorKind(StrEnum):
    """Every refusal a vendor can give before or instead of an answer.

    Each wire renders each kind with that vendor's status, envelope and headers
    (reference/providers.md §0 and §1); `CONTENT_FILTER` is a blocked *prompt* and
    is rendered by `Wire.blocked_prompt`, because most vendors answer it with a 200.
    """

    INVALID_REQUEST = "invalid_request"
    """400: the request is malformed (bad JSON, missing or mistyped field)."""
    CONTEXT_LENGTH = "context_length"
    """400: prompt plus max tokens exceed the model's context window."""
    AUTH = "auth"
    """401: missing or wrong API key."""
    MODEL_GONE = "model_gone"
    """404: unknown or withdrawn model / deployment."""
    RATE_LIMITED = "rate_limited"
    """429: transient rate limit, with a Retry-After in the vendor's form."""
    QUOTA = "quota"
    """429 that waiting will not fix: OpenAI's `insufficient_quota` (others: their closest)."""
    SERVER = "server"
    """500: the vendor failed internally."""
    OVERLOADED = "overloaded"
    """503 (Anthropic: 529 `overloaded_error`): shedding load."""
    NOT_READY = "not_ready"
    """The model is warming up: Bedrock's ModelNotReadyException (429); 503 elsewhere."""
    CONTENT_FILTER = "content_filter"
    """The prompt itself was refused by the vendor's safety system."""


class Finish(StrEnum):
    """Why a complete answer ended, in vendor-neutral words each wire maps to its own."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    """The completion was blocked part-way (OpenAI/Azure `content_filter`, Anthropic
    `refusal`, Gemini `SAFETY`, Bedrock `guardrail_intervened`)."""
    CONTEXT = "context"
    """The answer ran into the context window (Mistral `model_length`; `length` elsewhere)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the client offered: its name and JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """A chat request as the fake server understands it, whatever wire it came in on.

    `model` has the fault directive stripped (`fault` holds it). `deployment` is the
    name the path carried when the vendor routes by path (Azure deployment, Bedrock
    model id, Gemini model), else None. `tool_choice` is `auto`, `none`, `required`,
    or `tool:<name>`. `prompt` joins every text the client sent, so answers are a
    deterministic function of it. `carries_on` marks a request ending in the assistant's
    own unfinished text (a prefill), which the answer continues.
    """

    protocol: str
    model: str
    stream: bool
    input_tokens: int
    prompt: str
    max_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    include_usage: bool = False
    fault: str | None = None
    deployment: str | None = None
    carries_on: bool = False

    def wants_tool(self) -> ToolSpec | None:
        """The tool the answer should call, or None for a text answer.

        A forced choice calls that tool; `required` calls the first; `auto` calls the
        first when the last thing the client sent was not already a tool result
        (`prompt` ends with the marker the wires put after tool results), so an agent
        loop of call → result → answer terminates.
        """
        if not self.tools or self.tool_choice == "none":
            return None
        if self.tool_choice.startswith("tool:"):
            wanted = self.tool_choice.removeprefix("tool:")
            return next((tool for tool in self.tools if tool.name == wanted), self.tools[0])
        if self.tool_choice == "auto" and self.prompt.endswith(TOOL_RESULT_MARK):
            return None
        return self.tools[0]


TOOL_RESULT_MARK = "\x00tool-result"
"""Wires append this to `Call.prompt` when the last message was a tool result."""


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool call in an answer; each wire makes the id in its vendor's own format."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the fake model says: text one token per piece, tool calls, and why it stopped."""

    pieces: tuple[str, ...]
    tool_uses: tuple[ToolUse, ...]
    finish: Finish
    input_tokens: int
    output_tokens: int

    @property
    def text(self) -> str:
        """The whole text answer."""
        return "".join(self.pieces)


@dataclass(frozen=True, slots=True)
class RateSnapshot:
    """Rate-limit state for the `x-ratelimit-*` / `anthropic-ratelimit-*` headers."""

    limit_requests: int
    remaining_requests: int
    reset_requests_s: float
    limit_tokens: int
    remaining_tokens: int
    reset_tokens_s: float


@dataclass(frozen=True, slots=True)
class Reply:
    """Per-response facts a wire needs for ids and headers.

    `token` is 24 lowercase alphanumerics drawn from the server's seeded generator:
    wires build their ids from it (`chatcmpl-…`, `msg_…`, `toolu_…`, `req_…`), so a
    seeded run gives the same ids. `created` is Unix seconds. `now_epoch` (float) is
    for RFC 3339 reset times.
    """

    token: str
    created: int
    now_epoch: float
    rate: RateSnapshot | None = None
    should_retry: bool | None = None
    """When set, OpenAI-family wires send `x-should-retry: true|false`."""


class StreamEncoder(ABC):
    """The bytes of one streamed answer, piece by piece; the server decides when to send them.

    The server calls `start()` once, `text()` per token, `tools()` once when the answer
    has tool calls, then exactly one of `finish()` (possibly without usage or terminator,
    as faults demand), `error()` (a mid-stream error event), or nothing at all (a cut).
    `malformed()` is a broken chunk sent in the middle of a stream.
    """

    content_type: ClassVar[str] = "text/event-stream"

    def headers(self) -> dict[str, str]:
        """Extra response headers for the stream (request ids, rate limits)."""
        return {}

    @abstractmethod
    def start(self) -> bytes:
        """Whatever a vendor sends before the first token (role delta, message_start…)."""

    @abstractmethod
    def text(self, piece: str) -> bytes:
        """One token of text."""

    @abstractmethod
    def tools(self) -> bytes:
        """Every tool call of the answer, split into the vendor's fragments."""

    @abstractmethod
    def finish(self, *, usage: bool = True, terminator: bool = True) -> bytes:
        """The end: finish/stop reason, usage (unless `usage` is False), terminator."""

    @abstractmethod
    def error(self, kind: ErrorKind, message: str) -> bytes:
        """A mid-stream error event after a 200 (OpenAI `data: {"error"…}`, Anthropic
        `event: error`, Bedrock exception frame)."""

    def malformed(self) -> bytes:
        """A chunk that does not parse."""
        return b'data: {"choices": [{"delta": {"content": "\n\n'

    def ping(self) -> bytes:
        """A keep-alive event, or nothing when the vendor has none."""
        return b""


ChatHandler = Callable[[web.Request, Call, "Wire"], Awaitable[web.StreamResponse]]
"""What a wire's chat route calls once it has read a valid `Call`."""


class Wire(ABC):
    """One vendor's wire protocol: routes, request parsing, and every response shape."""

    protocol: ClassVar[str]

    @abstractmethod
    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """The vendor's paths. Chat routes check auth, parse into a `Call` (answering
        `INVALID_REQUEST`/`AUTH` errors themselves, naming the field), then return
        `await serve(request, call, self)`. `models` feeds model listings."""

    @abstractmethod
    def complete(self, call: Call, answer: Answer, reply: Reply) -> web.Response:
        """A non-streamed answer with usage."""

    @abstractmethod
    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """The encoder for a streamed answer."""

    @abstractmethod
    def error(
        self,
        kind: ErrorKind,
        reply: Reply,
        *,
        message: str | None = None,
        retry_after_s: float | None = None,
    ) -> web.Response:
        """A refusal with the vendor's status, envelope and headers."""

    @abstractmethod
    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """The vendor's answer to a prompt its safety system refuses."""


def split_directive(model: str) -> tuple[str, str | None]:
    """`gpt-4o~stream_cut` → (`gpt-4o`, `stream_cut`); a plain name → (name, None)."""
    name, sep, fault = model.partition(DIRECTIVE_SEPARATOR)
    return (name, fault or None) if sep else (model, None)
