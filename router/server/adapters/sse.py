"""Server-sent events, parsed incrementally from the lines of an upstream response.

Both OpenAI (`data:` only) and Anthropic (`event:` + `data:`) stream SSE; the parser
follows the WHATWG rules the vendors' SDKs follow: fields until a blank line, `data`
lines joined with newlines, comments (`:`) ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event: its name (empty when unnamed) and its data."""

    event: str
    data: str


class SseParser:
    """Feed it lines (bytes, with or without line endings); it returns completed events."""

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def line(self, raw: bytes) -> SseEvent | None:
        """Consume one line; an event when it was the blank line that ends one."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            return self.flush()
        if text.startswith(":"):
            return None
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> SseEvent | None:
        """The event in progress, if any (also called at end of stream)."""
        if not self._data and not self._event:
            return None
        event = SseEvent(self._event, "\n".join(self._data))
        self._event = ""
        self._data = []
        return event
