"""Name resolution the harness controls, so a DNS fault breaks lookups and nothing else.

In the AWS us-east-1 incident of 20 October 2025 the endpoint's DNS record went empty:
new connections failed to resolve while pooled keep-alive connections kept working until
they were recycled. To reproduce that for real, the router resolves provider hosts
through `ControlledResolver`, an aiohttp resolver that asks the fakes' control API; when
a DNS fault covers the host it raises the `OSError` a failed `getaddrinfo` raises, which
aiohttp's connector turns into `ClientConnectorDNSError`, exactly as in production. Only
lookups fail, so only new connections fail: the pool does the rest.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["ControlledResolver"]


class ControlledResolver(AbstractResolver):
    """Resolves every host through the control API's `/dns/resolve` (to 127.0.0.1), or fails.

    The control API is reached over a plain connection of its own (it lives on 127.0.0.1,
    so it needs no lookup), and is asked once per new connection — the same rate a real
    resolver is used at.
    """

    def __init__(self, control_url: str) -> None:
        self._control = control_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of `host`, or the OSError of a failed lookup."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=5), connector=aiohttp.TCPConnector(limit=4)
            )
        url = f"{self._control}/dns/resolve"
        async with self._session.get(url, params={"host": host}) as response:
            body: dict[str, Any] = await response.json()
        if response.status != 200:
            raise OSError(socket.EAI_NONAME, body.get("error", "Name or service not known"))
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in body["addresses"]
        ]  # fmt: skip

    async def close(self) -> None:
        """Close the connection to the control API."""
        if self._session is not None:
            await self._session.close()
            self._session = None
