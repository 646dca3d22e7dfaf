"""Running the gateway as a process: bind, report, reload on SIGHUP, drain on SIGINT/SIGTERM.

Graceful shutdown is aiohttp's own: on stop the app turns not-ready (`/readyz` 503, so
a load balancer stops sending), the listener closes, in-flight requests get up to
`drain_s` to finish, then the pools close. No request that was accepted is cut short
by a routine restart.

SIGHUP re-reads the policy file. The new policy is validated completely — the file,
and then everything the gateway builds from it — before it replaces the old one; an
invalid file is logged with file, line and field and the old policy keeps serving.
In-flight requests finish under the policy they started with (`router.server.reload`).

With an audit log, every trace row is appended to it as JSON lines, at most a second
late and once more at shutdown (`router.server.audit`).

The process tunes the cyclic garbage collector for a server (`tune_gc`): what start-up
loaded is frozen out of collections, and the young generation is collected every
`GC_YOUNG_THRESHOLD` allocations instead of every 700. Almost all of a request's objects
die by reference counting; at the default threshold the collector still ran every few
requests and re-scanned everything that outlived one, about a tenth of the gateway's CPU
(benchmarks/gateway_throughput.py). A reload unfreezes, so a retired policy's cycles
can still be collected.

The event loop is uvloop where it is installed (`event_loop`), as under uvicorn, and so
under LiteLLM's proxy: side by side it took 5 % off the gateway's CPU per non-streamed
request and 2 % off a streamed one (benchmarks/gateway_throughput.py, `--loop`). Its
clock counts whole milliseconds, so the driver reads engine time from `time.monotonic()`
and uses the loop only to schedule (`router.server.driver`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractResolver

from router.core.errors import ConfigError
from router.core.policy import Policy
from router.core.trace import TraceRecorder
from router.server.app import DRIVERS, create_app
from router.server.audit import AuditLog
from router.server.fingerprints import PromptFingerprints
from scenarios.policy_files import load_policy

__all__ = [
    "DEFAULT_DRAIN_S",
    "EVENT_LOOPS",
    "GC_YOUNG_THRESHOLD",
    "LoopFactory",
    "event_loop",
    "reload_policy",
    "run_gateway",
    "serve",
    "tune_gc",
]

DEFAULT_DRAIN_S = 30.0
"""How long in-flight requests may take to finish after a stop signal."""

GC_YOUNG_THRESHOLD = 50_000
"""Allocations between collections of the youngest generation (CPython's default: 700)."""

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
"""The event loops `serve --loop` and `fakes --loop` offer; `auto` is uvloop if it is
installed, else asyncio."""

_log = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
"""What makes the event loop a server process runs on (`asyncio.Runner`'s loop_factory)."""


def event_loop(name: str = "auto") -> tuple[str, LoopFactory]:
    """The loop named `name` (one of `EVENT_LOOPS`) as (its own name, a factory).

    `auto` falls back to asyncio quietly, because uvloop has no Windows build; asking for
    `uvloop` by name where it is missing is a ValueError that says how to install it.
    """
    if name not in EVENT_LOOPS:
        raise ValueError(f"unknown event loop {name!r} (one of: {', '.join(EVENT_LOOPS)})")
    if name == "asyncio":
        return "asyncio", asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ValueError("uvloop is not installed (pip install uvloop)") from None
        return "asyncio", asyncio.new_event_loop
    return "uvloop", uvloop.new_event_loop


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


def tune_gc() -> None:
    """Freeze what start-up built and collect the young generation less often.

    Process-wide, so only the gateway's own process calls it (`run_gateway`), never a
    test or a live run that hosts the gateway beside other work.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def reload_policy(app: web.Application, path: Path) -> bool:
    """Serve `path`'s policy from now on; False (logged, old policy kept) if it is invalid."""
    try:
        policy = load_policy(path, require_env=True)
        app[DRIVERS].reload(policy)
    except ConfigError as error:
        for issue in error.issues:
            _log.error("reload refused, keeping policy %r: %s", app[DRIVERS].policy.name, issue)
        return False
    except (OSError, UnicodeDecodeError, ValueError) as problem:
        _log.error(
            "reload refused, keeping policy %r: %s: %s", app[DRIVERS].policy.name, path, problem
        )
        return False
    gc.unfreeze()  # the retired policy was frozen at start-up; let its cycles go
    routes = ", ".join(route.name for route in policy.routes)
    _log.warning("reloaded %s: policy %r, routes: %s", path, policy.name, routes)
    return True


def run_gateway(
    policy: Policy,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    resolver: AbstractResolver | None = None,
    drain_s: float = DEFAULT_DRAIN_S,
    policy_path: Path | None = None,
    audit_log: Path | None = None,
    prompt_key: bytes | None = None,
    loop_factory: LoopFactory = asyncio.new_event_loop,
    on_ready: Callable[[str], None] = lambda url: None,
) -> None:
    """Run the gateway for `policy` on a loop from `loop_factory` until SIGINT or SIGTERM.

    With `policy_path`, SIGHUP reloads the policy from it; with `audit_log`, trace rows
    are appended there as JSON lines, and with `prompt_key` too, each request row
    carries its body's keyed fingerprint (`router.server.fingerprints`).
    """
    if prompt_key is not None and audit_log is None:
        raise ValueError("a prompt fingerprint key needs an audit log to write to")
    fingerprints = PromptFingerprints(prompt_key) if prompt_key is not None else None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        trace = TraceRecorder() if audit_log is not None else None
        app = create_app(policy, resolver=resolver, trace=trace, fingerprints=fingerprints)
        if audit_log is not None and trace is not None:
            AuditLog(audit_log, trace, fingerprints=fingerprints).attach(app)
        if policy_path is not None:
            loop.add_signal_handler(signal.SIGHUP, reload_policy, app, policy_path)
        tune_gc()
        await serve(app, host=host, port=port, stop=stop, drain_s=drain_s, on_ready=on_ready)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
