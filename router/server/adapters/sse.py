"""Server-sent events, parsed incrementally from an upstream response.

Both OpenAI (`data:` only) and Anthropic (`event:` + `data:`) stream SSE; the parser
follows the WHATWG rules the vendors' SDKs follow: fields until a blank line, `data`
lines joined with newlines, comments (`:`) ignored.

The gateway feeds whole network reads (`feed`): one read usually carries several
events, and decoding and splitting it once costs far less than a call per line (the
per-line `line` is kept for callers that have lines, and is what `feed` must agree with).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SseEvent", "SseParser"]


class SseEvent(NamedTuple):
    """One event: its name (empty when unnamed) and its data.

    A named tuple, not a frozen dataclass: one is made per event of every upstream
    stream, and a tuple is built in half the time.
    """

    event: str
    data: str


class SseParser:
    """Feed it network chunks (`feed`) or lines (`line`); it returns completed events."""

    __slots__ = ("_data", "_event", "_pending")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back for the next chunk (callers cap it)."""
        return len(self._pending)

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume one network chunk; the events its complete lines finish.

        The chunk is cut after its last newline and the complete part decoded at once: a
        newline byte never occurs inside a UTF-8 sequence, so this decodes (and replaces
        broken bytes) exactly as decoding line by line would.
        """
        buffer = self._pending + chunk if self._pending else chunk
        cut = buffer.rfind(b"\n")
        if cut < 0:
            self._pending = buffer
            return []
        self._pending = buffer[cut + 1 :]
        events: list[SseEvent] = []
        for text in buffer[:cut].decode("utf-8", errors="replace").split("\n"):
            if text.endswith("\r"):
                text = text.rstrip("\r")
            if not text:
                if self._data or self._event:
                    events.append(SseEvent(self._event, "\n".join(self._data)))
                    self._event = ""
                    self._data = []
            elif text.startswith("data: "):  # the common case, said first
                self._data.append(text[6:])
            else:
                self._field(text)
        return events

    def close(self) -> list[SseEvent]:
        """The end of the stream: an unterminated last line and event still count."""
        pending, self._pending = self._pending, b""
        if pending:
            self.line(pending)
        tail = self.flush()
        return [] if tail is None else [tail]

    def line(self, raw: bytes) -> SseEvent | None:
        """Consume one line; an event when it was the blank line that ends one."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            return self.flush()
        self._field(text)
        return None

    def _field(self, text: str) -> None:
        """One non-blank line: a field (`data`, `event`), a comment, or ignored."""
        if text.startswith(":"):
            return
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value

    def flush(self) -> SseEvent | None:
        """The event in progress, if any (also called at end of stream)."""
        if not self._data and not self._event:
            return None
        event = SseEvent(self._event, "\n".join(self._data))
        self._event = ""
        self._data = []
        return event
