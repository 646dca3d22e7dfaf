"""One fake provider host: decides what happens to each attempt, then makes it happen on the wire.

A wire module reads the request into a `Call`; this module chooses the fault (model-name
directive, then the chaos registry, then the scenario's timeline through the behaviour
model in real time), holds a capacity slot like the real provider would, and performs the
answer with real timing: time to first token, a gap per token, cuts, stalls, resets. The
wire renders every byte, so the same decision reads as each vendor's own response.

The behaviour model is the one the simulator uses (`fakes.model.ProviderModel`), which is
what lets a live run and a simulated run of one scenario be compared: same admission
order, same capacity and queue, same latency distributions, same fault levels.
"""

from __future__ import annotations

import asyncio
import math
import socket
import string
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from random import Random

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from fakes.model import AttemptPlan, ProviderModel
from fakes.server.answers import DEFAULT_OUTPUT_TOKENS, answer_for
from fakes.server.chaos import FAULT_KINDS, Chaos, ChaosRegistry, chaos_from_directive
from fakes.server.journal import Journal, JournalEntry
from fakes.server.wire import Answer, Call, ErrorKind, Finish, RateSnapshot, Reply, Wire
from router.core.outcomes import Outcome, classify_status
from router.core.policy import Deployment

__all__ = ["Listing", "ProviderServer", "cdn_error_page", "drop_connection", "hold_silence"]

_ALPHABET = string.ascii_lowercase + string.digits
_POLL_S = 0.2
"""How often a silent or stalled handler checks whether its client has gone."""

_SILENT_CAP_S = 3600.0
"""A silent provider holds a connection at most this long if the client never gives up."""

_UNLIMITED = 1_000_000_000
"""The limit reported for a side of the rate limits the world does not set."""

_RESOLVED_ELSEWHERE = frozenset({"dns", "refuse"})
"""Faults the resolver (DNS) and the listener (refused connections) apply, not a handler."""

_OUTCOME_OF_ERROR = {
    ErrorKind.INVALID_REQUEST: "bad_request",
    ErrorKind.CONTEXT_LENGTH: "context_length",
    ErrorKind.AUTH: "auth",
    ErrorKind.MODEL_GONE: "model_gone",
    ErrorKind.RATE_LIMITED: "rate_limited",
    ErrorKind.QUOTA: "auth",
    ErrorKind.SERVER: "server",
    ErrorKind.OVERLOADED: "overloaded",
    ErrorKind.NOT_READY: "overloaded",
    ErrorKind.CONTENT_FILTER: "content_filter",
}


def cdn_error_page(status: int, host: str) -> web.Response:
    """A CDN's own error page: HTML, not the vendor's JSON, as clients meet it in an edge outage."""
    body = (
        "<!DOCTYPE html><html><head><title>"
        f"{host} | {status}: Bad gateway</title></head><body>"
        f"<h1>Error {status}</h1><p>Bad gateway. The web server reported a bad gateway error.</p>"
        "<p>Please try again in a few minutes.</p><p>Edge: fake-edge</p></body></html>"
    )
    return web.Response(
        status=status, text=body, content_type="text/html", headers={"Server": "edge"}
    )


@dataclass(slots=True)
class Listing:
    """One deployment a host serves: its policy entry, its behaviour model, its busy slots."""

    deployment: Deployment
    model: ProviderModel | None
    domains: frozenset[str]
    in_service: int = 0
    queued: int = 0
    freed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Timing:
    """When the answer's bytes go out: first token after `ttft_s`, then a gap per token."""

    ttft_s: float = 0.0
    per_token_s: float = 0.0
    jitter: float = 0.0


@dataclass(slots=True)
class _Attempt:
    """One attempt at this host: what came in, what it is answered with, its journal entry.

    `reply` is replaced once the behaviour model has charged the rate limits (the
    headers count this request).
    """

    request: web.Request
    call: Call
    wire: Wire
    reply: Reply
    entry: JournalEntry


_STREAM_BREAKS = frozenset({"mid_stream_error", "stream_cut", "stream_stall", "malformed"})
"""Faults that strike a stream on its `after_tokens`-th token."""

_SERVED = web.RequestKey("served", bool)
"""Set on a request the provider itself served (and journaled)."""


class ProviderServer:
    """The `ChatHandler` of one provider host (all the deployments behind one base URL).

    `clock()` returns scenario seconds (real time × speedup since the world started), so
    the behaviour model reads the same fault levels a simulation would at that moment.
    """

    def __init__(
        self,
        host: str,
        listings: Mapping[str, Listing],
        *,
        chaos: ChaosRegistry,
        journal: Journal,
        clock: Callable[[], float],
        rng: Random,
    ) -> None:
        self.host = host
        self._listings = dict(listings)
        self._chaos = chaos
        self._journal = journal
        self._clock = clock
        self._rng = rng

    @property
    def models(self) -> list[str]:
        """Model names served here, for the vendors' model listings."""
        return sorted({listing.deployment.model for listing in self._listings.values()})

    def _find(self, call: Call) -> Listing | None:
        for name in (call.deployment, call.model):
            if name is not None and name in self._listings:
                return self._listings[name]
        return None

    def _reply(self) -> Reply:
        now = time.time()
        token = "".join(self._rng.choice(_ALPHABET) for _ in range(24))
        return Reply(token=token, created=int(now), now_epoch=now)

    def journal_refusals(self, protocol: str) -> Middleware:
        """A middleware that journals the chat requests a wire refused before serving
        them (a missing key's 401, a malformed body's 400), so the journal holds every
        attempt that reached this host, as the vendor would count them. What the refused
        request was for is unknown: its model is empty, its deployment None."""

        @web.middleware
        async def journaled(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            if request.method == "POST" and response.status >= 400 and _SERVED not in request:
                entry = self._journal.open(
                    host=self.host, deployment=None, model="", protocol=protocol,
                    stream=False, input_tokens=0,
                )  # fmt: skip
                outcome = classify_status(response.status).value
                self._journal.finish(entry, outcome=outcome, http_status=response.status)
            return response

        return journaled

    async def __call__(self, request: web.Request, call: Call, wire: Wire) -> web.StreamResponse:
        """Serve one attempt: pick its fault, hold a slot, perform it, journal it."""
        request[_SERVED] = True
        listing = self._find(call)
        entry = self._journal.open(
            host=self.host,
            deployment=None if listing is None else listing.deployment.id,
            model=call.model,
            protocol=wire.protocol,
            stream=call.stream,
            input_tokens=call.input_tokens,
        )
        attempt = _Attempt(request, call, wire, self._reply(), entry)
        if listing is None:
            message = _openai_words(
                wire, f"The model `{call.model}` does not exist or you do not have access to it."
            )
            return self._refuse(attempt, ErrorKind.MODEL_GONE, message)
        deployment = listing.deployment
        chaos = chaos_from_directive(call.fault) if call.fault else None
        if call.fault and chaos is None:
            message = (
                f"The model `{call.model}~{call.fault}` does not exist: `{call.fault}` is not a "
                f"fault directive (known: {', '.join(FAULT_KINDS)}; e.g. `stream_cut-5`)."
            )
            return self._refuse(attempt, ErrorKind.MODEL_GONE, message)
        if chaos is None:
            chaos = self._chaos.pick(
                deployment.id, listing.domains, self.host, self._rng, exclude=_RESOLVED_ELSEWHERE
            )  # edge rules are the edge's: pick() skips them
        window = deployment.context_window
        if chaos is None and call.input_tokens + (call.max_tokens or 0) > window:
            message = (
                f"This model's maximum context length is {window} tokens. However, you requested "
                f"{call.input_tokens + (call.max_tokens or 0)} tokens."
            )
            return self._refuse(attempt, ErrorKind.CONTEXT_LENGTH, _openai_words(wire, message))
        if chaos is not None or listing.model is None:
            answer = answer_for(call, context_window=window)
            return await self._perform(attempt, answer, chaos, _Timing())
        return await self._modelled(attempt, listing, listing.model)

    async def _modelled(
        self, attempt: _Attempt, listing: Listing, model: ProviderModel
    ) -> web.StreamResponse:
        """The scenario's timeline decides: gate, then a capacity slot, then service."""
        call = attempt.call
        now = self._clock()
        wanted = min(call.max_tokens or DEFAULT_OUTPUT_TOKENS, DEFAULT_OUTPUT_TOKENS)
        refusal = model.gate(
            now,
            input_tokens=call.input_tokens,
            max_output_tokens=call.max_tokens or wanted,
            task="",
            rng=self._rng,
        )
        answer = answer_for(
            call, output_tokens=wanted, context_window=listing.deployment.context_window
        )
        attempt.reply = replace(attempt.reply, rate=_snapshot(model.rate_state(now)))
        if refusal is not None:
            return await self._planned(attempt, answer, refusal)
        if not await self._take_slot(listing, model):
            return await self._planned(attempt, answer, model.overload_plan(now))
        try:
            plan = model.plan(
                self._clock(),
                input_tokens=call.input_tokens,
                output_tokens=answer.output_tokens,
                stream=call.stream,
                rng=self._rng,
            )
            return await self._planned(attempt, answer, plan)
        finally:
            listing.in_service -= 1
            listing.freed.set()

    async def _take_slot(self, listing: Listing, model: ProviderModel) -> bool:
        """A slot now, or after queueing; False when slots and queue are both full."""
        if listing.in_service < model.capacity(self._clock()):
            listing.in_service += 1
            return True
        if listing.queued >= model.queue_limit:
            return False
        listing.queued += 1
        try:
            while listing.in_service >= model.capacity(self._clock()):
                listing.freed.clear()
                await listing.freed.wait()
        finally:
            listing.queued -= 1
        listing.in_service += 1
        return True

    async def _planned(
        self, attempt: _Attempt, answer: Answer, plan: AttemptPlan
    ) -> web.StreamResponse:
        """Perform what the behaviour model planned.

        A refusal or an error is answered when the plan says it ends; a cut or stalled
        stream keeps the plan's timing and breaks on its token.
        """
        chaos = _chaos_of_plan(plan)
        breaks_stream = chaos is not None and chaos.kind in ("stream_cut", "stream_stall")
        if chaos is not None and not breaks_stream and math.isfinite(plan.end_s):
            await asyncio.sleep(plan.end_s)
        timing = _Timing(ttft_s=plan.ttft_s or 0.0, per_token_s=plan.per_token_s)
        return await self._perform(attempt, answer, chaos, timing)

    def _refuse(self, attempt: _Attempt, kind: ErrorKind, message: str | None) -> web.Response:
        """An answer the fake gives before any fault or model is consulted, journaled."""
        response = attempt.wire.error(kind, attempt.reply, message=message)
        self._journal.finish(
            attempt.entry, outcome=_OUTCOME_OF_ERROR[kind], http_status=response.status
        )
        return response

    async def _perform(
        self, attempt: _Attempt, answer: Answer, chaos: Chaos | None, timing: _Timing
    ) -> web.StreamResponse:
        """Make the decision happen on the wire, and journal how it ended."""
        if chaos is not None:
            request, call, wire = attempt.request, attempt.call, attempt.wire
            reply, entry = attempt.reply, attempt.entry
            entry.fault, entry.source = chaos.kind, chaos.source
            kind, finish = chaos.kind, self._journal.finish
            error = chaos.error
            if error is not None:
                retry = chaos.retry_after_s
                if error is ErrorKind.RATE_LIMITED and retry is None:
                    retry = 1.0
                response = wire.error(error, reply, retry_after_s=retry)
                finish(entry, outcome=_OUTCOME_OF_ERROR[error], http_status=response.status)
                return response
            if kind in ("reset", "dns", "refuse"):
                finish(entry, outcome="connect", http_status=None)
                return await drop_connection(request)
            if kind == "silent":
                await hold_silence(request, _SILENT_CAP_S)
                finish(entry, outcome="timeout", http_status=None)
                return await drop_connection(request)
            if kind == "edge_5xx":
                finish(entry, outcome="server", http_status=502)
                return cdn_error_page(502, self.host)
            if kind == "content_filter":
                response = wire.blocked_prompt(call, reply)
                finish(entry, outcome="content_filter", http_status=response.status)
                return response
            if kind == "slow_first_token":
                timing = replace(timing, ttft_s=timing.ttft_s + chaos.delay_s)
            elif kind == "slow_tokens":
                timing = replace(timing, per_token_s=chaos.per_token_s, jitter=chaos.jitter)
            elif kind == "completion_filter":
                cut = answer.pieces[: chaos.after_tokens]
                answer = replace(
                    answer, pieces=cut, finish=Finish.CONTENT_FILTER, output_tokens=len(cut)
                )
        if not attempt.call.stream:
            return await self._whole(attempt, answer, chaos, timing)
        return await self._streamed(attempt, answer, chaos, timing)

    async def _whole(
        self, attempt: _Attempt, answer: Answer, chaos: Chaos | None, timing: _Timing
    ) -> web.StreamResponse:
        """A non-streamed answer: it is sent when the whole answer would be generated."""
        request, call, wire = attempt.request, attempt.call, attempt.wire
        reply, entry = attempt.reply, attempt.entry
        kind = None if chaos is None else chaos.kind
        await asyncio.sleep(timing.ttft_s + max(0, answer.output_tokens - 1) * timing.per_token_s)
        journal = self._journal
        if kind == "mid_stream_error":
            response = wire.error(ErrorKind.SERVER, reply)
            journal.finish(entry, outcome="server", http_status=response.status)
            return response
        response = wire.complete(call, answer, reply)
        if chaos is not None and kind in ("stream_cut", "stream_stall", "malformed"):
            body = response.body if isinstance(response.body, bytes) else b"{}"
            head = body[: len(body) // 2]
            partial = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            if kind != "malformed":
                partial.content_length = len(body)
            await partial.prepare(request)
            await partial.write(head)
            if kind == "malformed":
                await partial.write_eof()
                journal.finish(entry, outcome="bad_request", http_status=200)
                return partial
            if kind == "stream_stall":
                await hold_silence(request, chaos.stall_or(_SILENT_CAP_S))
            journal.finish(entry, outcome=kind, http_status=200)
            return await drop_connection(request, partial)
        journal.finish(
            entry, outcome="ok", http_status=response.status, output_tokens=answer.output_tokens
        )
        return response

    async def _streamed(
        self, attempt: _Attempt, answer: Answer, chaos: Chaos | None, timing: _Timing
    ) -> web.StreamResponse:
        """A streamed answer, token by token, with the stream fault striking on its token."""
        request, call, wire = attempt.request, attempt.call, attempt.wire
        reply, entry = attempt.reply, attempt.entry
        kind = None if chaos is None else chaos.kind
        strike = chaos.after_tokens if chaos is not None else -1
        encoder = wire.stream(call, answer, reply)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": encoder.content_type, **encoder.headers()}
        )
        journal = self._journal
        await response.prepare(request)
        await asyncio.sleep(timing.ttft_s)
        await response.write(encoder.start())
        for index, piece in enumerate(answer.pieces):
            if index == strike and chaos is not None and kind in _STREAM_BREAKS:
                if kind == "malformed":
                    await response.write(encoder.malformed())
                elif kind == "mid_stream_error":
                    await response.write(encoder.error(ErrorKind.OVERLOADED, "Overloaded"))
                    await response.write_eof()
                    journal.finish(
                        entry, outcome="overloaded", http_status=200, output_tokens=index
                    )
                    return response
                else:
                    if kind == "stream_stall":
                        await hold_silence(request, chaos.stall_or(_SILENT_CAP_S))
                    journal.finish(entry, outcome=kind, http_status=200, output_tokens=index)
                    return await drop_connection(request, response)
            if index:
                await asyncio.sleep(self._gap(timing))
            await response.write(encoder.text(piece))
        if answer.tool_uses:
            await response.write(encoder.tools())
        await response.write(encoder.finish(terminator=kind != "no_done"))
        await response.write_eof()
        outcome = "bad_request" if kind == "malformed" else "ok"
        journal.finish(entry, outcome=outcome, http_status=200, output_tokens=answer.output_tokens)
        return response

    def _gap(self, timing: _Timing) -> float:
        if timing.jitter <= 0.0:
            return timing.per_token_s
        return timing.per_token_s * (1.0 + timing.jitter * (2.0 * self._rng.random() - 1.0))


def _snapshot(
    state: tuple[tuple[int, int, float] | None, tuple[int, int, float] | None] | None,
) -> RateSnapshot | None:
    """The behaviour model's buckets as the wires' rate-limit headers (no limits: None).

    Vendors always report both sides; a side the world leaves unlimited is reported as a
    billion, full, so no client backs off on account of it.
    """
    if state is None:
        return None
    requests, tokens = state
    unlimited = (_UNLIMITED, _UNLIMITED, 0.0)
    r, t = requests or unlimited, tokens or unlimited
    return RateSnapshot(
        limit_requests=r[0], remaining_requests=r[1], reset_requests_s=r[2],
        limit_tokens=t[0], remaining_tokens=t[1], reset_tokens_s=t[2],
    )  # fmt: skip


def _openai_words(wire: Wire, message: str) -> str | None:
    """`message` for the OpenAI family, whose wording it is; None lets other vendors use their
    own text ("prompt is too long", "The input token count…"), which routers match on."""
    return message if wire.protocol in ("openai", "azure-openai", "mistral") else None


def _chaos_of_plan(plan: AttemptPlan) -> Chaos | None:
    """The behaviour model's verdict as a fault to perform; None for a clean answer."""
    outcome = plan.outcome
    if outcome is Outcome.OK:
        return None
    if outcome is Outcome.STREAM_CUT:
        return Chaos("stream_cut", "scenario", after_tokens=plan.output_tokens)
    if outcome is Outcome.STREAM_STALL:
        stall = None if math.isinf(plan.stall_s) else plan.stall_s
        return Chaos("stream_stall", "scenario", after_tokens=plan.output_tokens, stall_s=stall)
    if outcome is Outcome.TIMEOUT:
        return Chaos("silent", "scenario")
    if outcome is Outcome.CONNECT:
        return Chaos("reset", "scenario")
    if outcome is Outcome.SERVER:
        return Chaos("edge_5xx" if plan.http_status == 502 else "server", "scenario")
    if outcome is Outcome.RATE_LIMITED:
        return Chaos("rate_limited", "scenario", retry_after_s=plan.retry_after_s)
    if outcome is Outcome.MODEL_GONE:
        return Chaos("model_gone", "scenario")
    if outcome is Outcome.CONTENT_FILTER:
        return Chaos("content_filter", "scenario")
    return Chaos("overloaded", "scenario")


async def hold_silence(request: web.Request, seconds: float) -> None:
    """Say nothing for `seconds`, or until the client hangs up."""
    deadline = asyncio.get_running_loop().time() + seconds
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(_POLL_S, max(0.0, deadline - loop.time())))


async def drop_connection(
    request: web.Request, response: web.StreamResponse | None = None
) -> web.StreamResponse:
    """Drop the connection with a TCP reset (SO_LINGER 0), as a crashed upstream or a cut does.

    Returns a response object only because aiohttp wants one; nothing more is sent.
    """
    transport = request.transport
    if transport is not None and not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    await asyncio.sleep(0)
    if response is not None:
        return response
    raise _Dropped


class _Dropped(web.HTTPException):
    """The connection is already gone; aiohttp finds nothing to write."""

    status_code = 499
