"""One keep-alive connection pool per deployment, with an optional injected resolver.

Separate pools keep one slow provider from starving another's connections and let a
DNS fault behave as in production: only *new* connections resolve, so pooled ones keep
working until they are recycled. The resolver is any aiohttp `AbstractResolver`; the
chaos harness passes one that asks its control API, production passes none (aiohttp's
default). Sessions are created inside the running loop and closed with the app.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver

from router.core.policy import Deployment

__all__ = ["Pools"]


class Pools:
    """Client sessions by deployment id; `open()` in the loop, `close()` on shutdown."""

    def __init__(
        self,
        deployments: Iterable[Deployment],
        *,
        resolver: AbstractResolver | None = None,
        limit_per_deployment: int = 256,
        keepalive_s: float = 30.0,
    ) -> None:
        if limit_per_deployment < 1:
            raise ValueError(f"limit_per_deployment must be >= 1, got {limit_per_deployment}")
        self._ids = [d.id for d in deployments]
        self._resolver = resolver
        self._limit = limit_per_deployment
        self._keepalive_s = keepalive_s
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def open(self) -> None:
        """Create every pool (needs a running event loop)."""
        for deployment_id in self._ids:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                keepalive_timeout=self._keepalive_s,
                resolver=self._resolver,
                ttl_dns_cache=None if self._resolver is None else 0,
                use_dns_cache=self._resolver is None,
            )
            self._sessions[deployment_id] = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "blastradius-gateway"},
            )

    def session(self, deployment_id: str) -> aiohttp.ClientSession:
        """The pool of one deployment."""
        return self._sessions[deployment_id]

    async def close(self) -> None:
        """Close every pool (the injected resolver is its owner's to close)."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
