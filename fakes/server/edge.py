"""The shared edge: one reverse proxy in front of several fake providers, like a CDN.

The 18 November 2025 Cloudflare failure took OpenAI and Anthropic down together because
both sat behind the same edge. Here the edge is a real proxy with one listener per
provider host it fronts: a fault on `edge:<name>` is applied by the edge itself, so every
vendor behind it fails at once with the edge's own HTML error page (not the vendor's
JSON), which is what a router's error classification has to cope with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random

import aiohttp
from aiohttp import web

from fakes.server.chaos import Chaos, ChaosRegistry
from fakes.server.provider import cdn_error_page, drop_connection, hold_silence
from scenarios.faults import AnyFault, Outage, Silent, level_at

__all__ = ["EDGE_KINDS", "EdgeProxy", "edge_faults"]

EDGE_KINDS = frozenset({"edge_5xx", "server", "overloaded", "reset", "silent"})
"""What an edge can do to a request by itself: its error pages, a reset, or silence."""

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)


def edge_faults(faults: Sequence[AnyFault]) -> list[tuple[int, AnyFault]]:
    """The scenario faults an edge applies itself: outages and silences on `edge:` domains."""
    return [
        (index, fault)
        for index, fault in enumerate(faults)
        if isinstance(fault, Outage | Silent)
        and any(domain.startswith("edge:") for domain in fault.target.domains)
    ]


class EdgeProxy:
    """The handler of one edge (`edge:<name>`); each listener forwards to one upstream host."""

    def __init__(
        self,
        label: str,
        *,
        chaos: ChaosRegistry,
        faults: Sequence[tuple[int, AnyFault]],
        clock: Callable[[], float],
        seed: int,
        rng: Random,
    ) -> None:
        self.label = label
        self._chaos = chaos
        self._faults = [(i, f) for i, f in faults if label in f.target.domains]
        self._clock = clock
        self._seed = seed
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None

    def app(self, host: str, upstream: str) -> web.Application:
        """The application of the listener that fronts `host`, forwarding to `upstream`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)

        async def forward(request: web.Request) -> web.StreamResponse:
            return await self._forward(request, host, upstream)

        app.router.add_route("*", "/{tail:.*}", forward)
        return app

    def _fault(self, host: str) -> Chaos | None:
        rule = self._chaos.pick_edge(self.label, host, self._rng, kinds=EDGE_KINDS)
        if rule is not None:
            return rule
        now = self._clock()
        for index, fault in self._faults:
            level = level_at(
                fault, now, member=self.label, seed=self._seed, fault_index=index,
                domains=(self.label,),
            )  # fmt: skip
            if level <= 0.0 or (level < 1.0 and self._rng.random() >= level):
                continue
            if not isinstance(fault, Outage):
                return Chaos("silent", "scenario")
            outcome = fault.outcome
            if outcome in ("connect", "dns"):
                return Chaos("reset", "scenario")
            return Chaos("overloaded" if outcome == "overloaded" else "edge_5xx", "scenario")
        return None

    async def _forward(self, request: web.Request, host: str, upstream: str) -> web.StreamResponse:
        chaos = self._fault(host)
        if chaos is not None:
            if chaos.kind == "reset":
                return await drop_connection(request)
            if chaos.kind == "silent":
                await hold_silence(request, 3600.0)
                return await drop_connection(request)
            return cdn_error_page(503 if chaos.kind == "overloaded" else 502, host)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        try:
            async with self._session.request(
                request.method, upstream + request.path_qs, headers=headers, data=body
            ) as answer:
                out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                out["Via"] = f"1.1 {self.label}"
                response = web.StreamResponse(status=answer.status, headers=out)
                await response.prepare(request)
                try:
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                    return await drop_connection(request, response)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientConnectionError):
            if request.transport is not None and not request.transport.is_closing():
                return cdn_error_page(502, host)
            return await drop_connection(request)

    async def close(self) -> None:
        """Close the upstream connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
