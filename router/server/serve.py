"""Running the gateway as a process: bind, report, drain on SIGINT/SIGTERM.

Graceful shutdown is aiohttp's own: on stop the app turns not-ready (`/readyz` 503, so
a load balancer stops sending), the listener closes, in-flight requests get up to
`drain_s` to finish, then the pools close. No request that was accepted is cut short
by a routine restart.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractResolver

from router.core.policy import Policy
from router.server.app import create_app

__all__ = ["DEFAULT_DRAIN_S", "run_gateway", "serve"]

DEFAULT_DRAIN_S = 30.0
"""How long in-flight requests may take to finish after a stop signal."""

_log = logging.getLogger(__name__)


def _bound_port(site: web.TCPSite) -> int:
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("the gateway's listener has no socket")
    return int(sockets[0].getsockname()[1])


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    drain_s: float = DEFAULT_DRAIN_S,
    on_ready: Callable[[str], None] = lambda url: None,
) -> None:
    """Serve `app` on host:port until `stop` is set, then drain and close."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=drain_s)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        on_ready(f"http://{host}:{_bound_port(site)}")
        await stop.wait()
    finally:
        await runner.cleanup()


def run_gateway(
    policy: Policy,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    resolver: AbstractResolver | None = None,
    drain_s: float = DEFAULT_DRAIN_S,
    on_ready: Callable[[str], None] = lambda url: None,
) -> None:
    """Run the gateway for `policy` until SIGINT or SIGTERM (blocking)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        app = create_app(policy, resolver=resolver)
        await serve(app, host=host, port=port, stop=stop, drain_s=drain_s, on_ready=on_ready)

    asyncio.run(main())
