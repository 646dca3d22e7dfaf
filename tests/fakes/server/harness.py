"""Run an aiohttp app on 127.0.0.1 (port 0) in a background thread, for synchronous SDK clients.

The vendors' SDKs under test (openai, anthropic, boto3, google-genai) are used in their
synchronous form, so the server gets its own thread and event loop; the context manager
stops it and joins the thread, so every server a test starts, the test stops.

`direct_app` serves a wire with no behaviour model: the fault directive in the model name
(`gpt-4o~rate_limited`) picks the response, with no delays. Wire tests use it to check
each vendor's bytes through that vendor's own client; the real fake server adds timing,
capacity and the chaos control API on top of the same wire calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from aiohttp import web

from fakes.server.answers import answer_for
from fakes.server.wire import Call, ErrorKind, Finish, Reply, Wire
from fakes.server.world import FakeWorld
from router.server.serve import event_loop

TOKEN = "abcdefghijklmnopqrstuvwx"


def reply(**overrides: object) -> Reply:
    """A fixed Reply, so ids in wire tests are predictable."""
    values: dict[str, object] = {"token": TOKEN, "created": 1_767_225_600, "now_epoch": 1.7672256e9}
    values.update(overrides)
    return Reply(**values)  # type: ignore[arg-type]


async def serve_direct(request: web.Request, call: Call, wire: Wire) -> web.StreamResponse:
    """Answer `call` through `wire` as its directive says, immediately.

    Directives: none (answer), any `ErrorKind` value (that error; `rate_limited` with a
    Retry-After of 2 s), `blocked` (prompt filter), `completion_filter` (answer stopped by
    the filter), `mid_stream_error`, `stream_cut`, `no_done`, `no_usage`, `malformed`.
    """
    fault = call.fault
    r = reply()
    if fault == "blocked":
        return wire.blocked_prompt(call, r)
    if fault is not None and fault in ErrorKind.__members__.values():
        retry = 2.0 if fault == ErrorKind.RATE_LIMITED else None
        return wire.error(ErrorKind(fault), r, retry_after_s=retry)
    answer = answer_for(call, output_tokens=5)
    if fault == "completion_filter":
        answer = replace(answer, finish=Finish.CONTENT_FILTER)
    if not call.stream:
        return wire.complete(call, answer, r)
    encoder = wire.stream(call, answer, r)
    response = web.StreamResponse(
        status=200, headers={"Content-Type": encoder.content_type, **encoder.headers()}
    )
    await response.prepare(request)
    await response.write(encoder.start())
    for i, piece in enumerate(answer.pieces):
        if i == 2 and fault == "malformed":
            await response.write(encoder.malformed())
        if i == 2 and fault == "mid_stream_error":
            await response.write(encoder.error(ErrorKind.OVERLOADED, "Overloaded"))
            await response.write_eof()
            return response
        if i == 2 and fault == "stream_cut":
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(encoder.text(piece))
    if answer.tool_uses:
        await response.write(encoder.tools())
    await response.write(encoder.finish(usage=fault != "no_usage", terminator=fault != "no_done"))
    await response.write_eof()
    return response


def direct_app(wire: Wire, models: tuple[str, ...] = ("fake-model",)) -> web.Application:
    """An app serving `wire`'s routes with `serve_direct`."""
    app = web.Application()
    app.add_routes(wire.routes(serve_direct, models))
    return app


@contextmanager
def running(
    app: web.Application,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:0 in a thread; yield its base URL (`http://127.0.0.1:PORT`).

    The loop comes from `loop_factory`, so a gateway under test can run on the loop
    `blastradius serve` runs it on.
    """
    loop = loop_factory()
    runner = web.AppRunner(app, handle_signals=False)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        box["port"] = server.sockets[0].getsockname()[1]

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # surfaced to the test thread below
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in box:
        raise RuntimeError("test server failed to start") from box["error"]
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


SERVED_LOOP = event_loop("auto")[1]
"""The loop `blastradius fakes` (and `serve`) run on by default: uvloop where installed."""


@contextmanager
def running_world(
    world: FakeWorld, loop_factory: Callable[[], asyncio.AbstractEventLoop] = SERVED_LOOP
) -> Iterator[dict[str, Any]]:
    """Start `world` in a background thread on the loop `blastradius fakes` runs it on (or
    one from `loop_factory`); yield its ready document; stop it after."""
    loop = loop_factory()
    ready = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    box: dict[str, Any] = {}

    async def main() -> None:
        stop["event"] = asyncio.Event()
        try:
            box["ready"] = await world.start()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        ready.set()
        try:
            await stop["event"].wait()
        finally:
            await world.stop()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in box:
        thread.join(5)
        raise RuntimeError("fake world failed to start") from box["error"]
    try:
        yield box["ready"]
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(10)
        loop.close()
