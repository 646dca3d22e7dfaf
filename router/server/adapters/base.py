"""What every egress adapter gives the gateway: a request to send, and a decoder for the answer.

Theory of operation: the gateway always speaks OpenAI to its clients and each vendor's
own protocol upstream. An adapter owns both directions for one protocol — it turns the
client's OpenAI-shaped body into the vendor's request, and the vendor's stream events
and error bodies back into OpenAI-shaped *pieces* and *errors*. Everything else
(deadlines, the engine, the client's response) is protocol-blind and lives outside.

Upstream calls are streamed by default, whatever the client asked: only a stream has
a first token and gaps between tokens, so the engine's first-token and idle deadlines
mean the same thing here as in the simulator, and a non-streaming client simply gets
the pieces assembled (`router.server.completion`). A policy may trade that agreement
for CPU (`resilience.streaming.plain_clients: whole`): a non-streaming client's attempt
then goes to the vendor's non-streaming endpoint (`Adapter.build(stream=False)`) and the
JSON answer is read in one go by the same decoder (`StreamDecoder.feed_whole`), which
turns it into the very pieces, usage and errors the stream would have given — the
translation tables are the stream decoder's, so the two paths cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import orjson

from router.core.outcomes import Outcome
from router.core.policy import Deployment
from router.server.adapters.sse import SseEvent

__all__ = [
    "Adapter",
    "Piece",
    "StreamDecoder",
    "UpstreamError",
    "UpstreamRequest",
    "Usage",
    "json_or_none",
    "loads_event",
    "openai_error_body",
]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One HTTP call to a vendor: where, with which headers, and the JSON body.

    `content` is the body's bytes on the wire. An adapter that must sign them (Bedrock)
    encodes the body itself and passes them; otherwise they are encoded once, compactly,
    on first use.
    """

    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    encoded: bytes | None = None

    @property
    def content(self) -> bytes:
        """The bytes to send: the adapter's own encoding, else compact JSON of `body`."""
        if self.encoded is not None:
            return self.encoded
        return orjson.dumps(self.body)


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """A vendor's refusal, classified, with its body already in OpenAI's error envelope.

    `body` is what the client sees if this error ends the request, so an OpenAI client
    can parse a failure from any vendor; `retry_after_s` is the vendor's wait in seconds,
    whichever form it came in.
    """

    outcome: Outcome
    status: int | None
    body: Mapping[str, Any]
    retry_after_s: float | None = None

    @property
    def message(self) -> str:
        """The error's message, for logs and trace details (never the prompt)."""
        error = self.body.get("error")
        return str(error.get("message", "")) if isinstance(error, Mapping) else ""


class Usage(NamedTuple):
    """Tokens the vendor bills for one attempt."""

    input_tokens: int = 0
    output_tokens: int = 0


_NO_DELTA: Mapping[str, Any] = MappingProxyType({})


class Piece(NamedTuple):
    """One OpenAI `delta` (content, tool-call fragment or role), or a finish reason.

    `tokens` is how many output tokens the piece carries (content and tool-call
    fragments count one each): the gateway reports it as delivered once the piece has
    reached the client, which is what tells the engine a transparent failover is over.
    Pieces and `Usage` are named tuples, not frozen dataclasses, for the reason
    `SseEvent` is: several are made per network read.
    """

    delta: Mapping[str, Any] = _NO_DELTA
    finish_reason: str | None = None
    tokens: int = 0


class StreamDecoder(ABC):
    """Reads one vendor stream, event by event, into OpenAI pieces.

    After the stream ends the gateway reads `done` (the vendor's terminal event was
    seen, or at least a finish reason), `error` (a mid-stream error event), `usage`
    and `model` (the model the vendor says answered).
    """

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self.error: UpstreamError | None = None
        self.usage: Usage | None = None
        self.model: str | None = None
        self.malformed = 0

    binary: ClassVar[bool] = False
    """True for a vendor whose stream is not SSE (Bedrock's AWS event stream): the
    gateway then hands the raw body to `feed_bytes` as it arrives, not lines to `feed`."""

    @abstractmethod
    def feed(self, event: SseEvent) -> list[Piece]:
        """The pieces one SSE event carries (often none)."""

    def feed_all(self, events: list[SseEvent]) -> list[Piece]:
        """The pieces of one network read's events, up to the terminal or error event.

        Events after `done` or an `error` are not read, as if the stream had stopped there.
        """
        pieces: list[Piece] = []
        for event in events:
            pieces += self.feed(event)
            if self.error is not None or self.done:
                break
        return pieces

    def feed_bytes(self, data: bytes) -> list[Piece]:
        """The pieces a chunk of a binary stream completes (only when `binary`)."""
        raise NotImplementedError(f"{type(self).__name__} reads SSE, not a binary stream")

    def feed_whole(self, raw: bytes) -> list[Piece]:
        """The pieces of a whole non-streamed answer (the body of `Adapter.build(stream=False)`).

        A body that is not one JSON object (cut short, or garbage) counts as malformed
        and leaves the decoder incomplete, which the gateway reports as `stream_cut`;
        a parsed answer is the vendor's last word, so it is `done` whatever it said.
        """
        document = json_or_none(raw)
        if not isinstance(document, dict):
            self.malformed += 1
            return []
        pieces = self.whole(document)
        self.done = True
        return pieces

    def whole(self, document: dict[str, Any]) -> list[Piece]:
        """The pieces of one parsed non-streamed answer, through this decoder's stream code.

        Each vendor's override restates its whole answer as the stream events that
        would have carried it and hands them to the same handlers `feed` uses.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read a non-streamed answer")

    @property
    def complete(self) -> bool:
        """True when the answer ended properly (a finish reason, with or without a terminator).

        A stream that ends after its finish reason but before `[DONE]` or `message_stop`
        is finalised as complete rather than failed: nothing of the answer is missing.
        """
        return self.error is None and (self.done or self.finished)


class Adapter(ABC):
    """One vendor protocol, both ways."""

    protocol: ClassVar[str]

    @abstractmethod
    def build(
        self, body: Mapping[str, Any], deployment: Deployment, *, stream: bool
    ) -> UpstreamRequest:
        """The vendor's request for the client's validated OpenAI body: its streaming
        endpoint, or (`stream=False`) its non-streaming one, whose answer is read whole
        and given to the decoder's `feed_whole`."""

    def request(self, body: Mapping[str, Any], deployment: Deployment) -> UpstreamRequest:
        """The streamed request (every attempt, unless a whole answer is asked for)."""
        return self.build(body, deployment, stream=True)

    def continued(self, body: Mapping[str, Any], said: str, delivered: int) -> dict[str, Any]:
        """The client's body, asking this vendor to carry on an answer from `said`.

        `said` is the text the client already has from a provider that broke off
        (`resilience.streaming.after_first_byte: continue`). It goes last, as the
        assistant's own unfinished turn (a prefill: Anthropic, Bedrock's Claude, Gemini and
        Mistral carry on from it; OpenAI has none, and its model answers with that turn in
        view), without trailing whitespace, which Anthropic refuses and the client already
        has. `max_tokens` shrinks by the `delivered` tokens, so the whole answer keeps the
        client's limit.
        """
        out = dict(body)
        prefix = said.rstrip()
        if prefix:
            out["messages"] = [*(body.get("messages") or ()), self.prefill(prefix)]
        for field in ("max_completion_tokens", "max_tokens"):
            limit = body.get(field)
            if isinstance(limit, int) and not isinstance(limit, bool):
                out[field] = max(1, limit - delivered)
        return out

    def prefill(self, text: str) -> dict[str, Any]:
        """The OpenAI-shaped message an answer is carried on from (see `continued`)."""
        return {"role": "assistant", "content": text}

    @abstractmethod
    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """A non-2xx answer as an outcome plus an OpenAI-style error body."""

    @abstractmethod
    def decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""


def loads_event(data: str) -> Any:
    """One stream event's JSON data; anything that is not one JSON value is a `ValueError`.

    The gateway decodes every event of every upstream stream, so this is orjson (several
    times the standard library's speed on small chunks). It is stricter than `json.loads`
    where JSON is: no NaN, no lone surrogates; a number too large for a float is refused.
    """
    return orjson.loads(data)


def json_or_none(raw: bytes) -> Any:
    """The JSON a vendor sent, or None for an empty, HTML or broken body (CDN error pages)."""
    try:
        return orjson.loads(raw)
    except ValueError:
        return None


def openai_error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope, the one shape every client of the gateway parses."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
