"""The client's side of a streamed answer: when its first byte goes out, and what it was.

The engine may fail over transparently only while nothing has reached the client, so
the first byte is a commitment. `ClientStream` holds it back: pieces of the serving
attempt are buffered until more than `hold_tokens` tokens have arrived (with the default
0, until the first token), and only then are the status line, headers (naming the
deployment) and the buffered chunks written. A failed attempt's buffer is dropped, so a
stream cut before that point is invisible to the client. Afterwards `delivered` counts
what the client has, which the driver reports to the engine as `delivered_tokens`.

Where the policy continues a broken answer on a fallback (`keep_said`), the stream also
keeps the text the client has (`said`): the fallback is asked to carry on from it, and
its pieces follow on the same response. An answer with a tool call under way is not
`resumable`. Other policies pay nothing for this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from router.server.adapters.base import Piece, Usage
from router.server.completion import chunk_bytes, done_bytes, error_event

__all__ = ["DEPLOYMENT_HEADER", "ClientStream"]

DEPLOYMENT_HEADER = "x-blastradius-deployment"
"""Response header naming the deployment that answered (or whose error surfaced)."""


class ClientStream:
    """One client's SSE response, fed by whichever attempt currently serves the request."""

    def __init__(
        self,
        request: web.Request,
        *,
        completion_id: str,
        created: int,
        include_usage: bool,
        hold_tokens: int = 0,
        on_gone: Callable[[], None] = lambda: None,
        keep_said: bool = False,
    ) -> None:
        if hold_tokens < 0:
            raise ValueError(f"hold_tokens must be >= 0, got {hold_tokens}")
        self._request = request
        self._id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._hold = hold_tokens
        self._on_gone = on_gone
        self._buffer: list[Piece] = []
        self._buffered_tokens = 0
        self._model = ""
        self._deployment = ""
        self.response: web.StreamResponse | None = None
        self.delivered = 0
        self.gone = False
        self.resumable = True
        self._keep = keep_said
        self._said: list[str] = []
        self._trim = False

    @property
    def committed(self) -> bool:
        """True once the status line went out: from here on, errors are in-band."""
        return self.response is not None

    def begin(self, deployment: str) -> int:
        """A new attempt starts serving; returns the tokens already delivered before it."""
        self._buffer.clear()
        self._buffered_tokens = 0
        if not self.committed:
            self._deployment = deployment
        return self.delivered

    @property
    def said(self) -> str:
        """The answer's text the client already has."""
        return "".join(self._said)

    def carry_on(self) -> str:
        """A fallback is about to carry the answer on: the text to carry on from.

        The fallback is given it without trailing whitespace (`Adapter.continued`) and
        will likely start with that whitespace itself, which the client already has: it
        is dropped from the start of the continuation.
        """
        said = self.said
        self._trim = said != said.rstrip()
        return said

    async def piece(self, piece: Piece, model: str) -> None:
        """Pass on one piece, holding it back while a transparent failover is still possible."""
        if not self.committed:
            self._model = model
            self._buffer.append(piece)
            self._buffered_tokens += piece.tokens
            if self._buffered_tokens > self._hold:
                await self._commit()
            return
        if self._trim:
            piece = self._trimmed(piece)
        await self._send(piece)

    def discard(self) -> None:
        """Drop what a failed attempt buffered (nothing of it reached the client)."""
        self._buffer.clear()
        self._buffered_tokens = 0

    async def finish(self, usage: Usage) -> web.StreamResponse:
        """The answer is complete: flush, then the usage chunk if asked for, then `[DONE]`."""
        if not self.committed:
            await self._commit()
        if self._include_usage:
            await self._write(chunk_bytes(self._id, self._created, self._model, None, usage))
        await self._write(done_bytes())
        return await self._close()

    async def fail(self, body: Mapping[str, Any]) -> web.StreamResponse:
        """End a committed stream with an in-band error event instead of `[DONE]`."""
        await self._write(error_event(body))
        return await self._close()

    async def _start_response(self) -> None:
        """Send the event stream's status line and headers: the commit point, for both doors."""
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                DEPLOYMENT_HEADER: self._deployment,
            },
        )
        self.response = response
        try:
            await response.prepare(self._request)
        except (ConnectionError, RuntimeError):
            self._lost()

    async def _commit(self) -> None:
        await self._start_response()
        role = Piece({"role": "assistant", "content": ""})
        await self._write(chunk_bytes(self._id, self._created, self._model, role))
        pieces, self._buffer = self._buffer, []
        for piece in pieces:
            await self._send(piece)
        self._buffered_tokens = 0

    async def _send(self, piece: Piece) -> None:
        """Write one piece the client may have now, and count it as delivered."""
        await self._write(self._encode(piece))
        self.delivered += piece.tokens
        if self._keep:
            self._note(piece)

    def _encode(self, piece: Piece) -> bytes:
        """One piece in this door's format: an OpenAI `chat.completion.chunk` event."""
        return chunk_bytes(self._id, self._created, self._model, piece)

    def _note(self, piece: Piece) -> None:
        """The client now has `piece` (`keep_said`): keep what a continuation needs."""
        delta = piece.delta
        text = delta.get("content")
        if text:
            self._said.append(text)
        if delta.get("tool_calls") or delta.get("refusal"):
            self.resumable = False

    def _trimmed(self, piece: Piece) -> Piece:
        """A continuation's piece without the whitespace the client already has."""
        text = piece.delta.get("content")
        if not isinstance(text, str) or not text:
            return piece
        kept = text.lstrip()
        self._trim = not kept
        return piece._replace(delta={**piece.delta, "content": kept})

    async def _write(self, data: bytes) -> None:
        if self.gone or self.response is None:
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self._lost()

    def _lost(self) -> None:
        if not self.gone:
            self.gone = True
            self._on_gone()

    async def _close(self) -> web.StreamResponse:
        assert self.response is not None
        if not self.gone:
            try:
                await self.response.write_eof()
            except (ConnectionError, RuntimeError):
                self._lost()
        return self.response
