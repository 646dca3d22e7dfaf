"""Benchmark: simple completions per second one fake provider serves on one core.

The fake runs in its own process (one asyncio loop: one core); a load generator in
this process keeps `--concurrency` keep-alive connections busy with small non-streamed
OpenAI chat completions for `--seconds`. The baseline runs side by side under the same
load: a bare aiohttp server answering a fixed JSON body, the ceiling for any aiohttp
server on this machine, so the ratio says what the fake's parsing, fault checks, journal
and wire rendering cost. Both run on uvloop where it is installed, as `blastradius fakes`
does by default. The issue's target is ≥ 3,000 completions/s.

Run: `python benchmarks/fake_throughput.py [--seconds 5] [--concurrency 32]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from harness import cpu_s, fake_world, free_port, load, stop, wait_listening

BARE_SERVER = """
import json
import sys
from aiohttp import web
BODY = json.dumps({
    "id": "chatcmpl-x", "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}).encode()
async def handle(request):
    await request.read()
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_post("/v1/chat/completions", handle)
try:
    import uvloop  # the loop `blastradius fakes` runs on by default
    loop = uvloop.new_event_loop()
except ImportError:
    loop = None
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, loop=loop)
"""

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}
BODY = json.dumps(REQUEST).encode()
HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


def measure_fake(seconds: float, concurrency: int) -> tuple[float, int, float]:
    """Completions/s, errors, and the fake's CPU milliseconds per completion."""
    with fake_world() as ready:
        url = ready["deployments"]["gpt-4o@openai"]["base_url"] + "/chat/completions"
        load(url, 1.0, concurrency, body=BODY, headers=HEADERS)  # warm-up
        cpu = cpu_s(ready["pid"])
        done, errors = load(url, seconds, concurrency, body=BODY, headers=HEADERS)
        cpu = cpu_s(ready["pid"]) - cpu
    return done / seconds, errors, 1000 * cpu / max(1, done)


def measure_bare(seconds: float, concurrency: int) -> tuple[float, float]:
    """Responses/s and the bare server's CPU milliseconds per response."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    try:
        wait_listening(port, process, "the bare server", 20)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load(url, 1.0, concurrency, body=BODY, headers=HEADERS)  # warm-up
        cpu = cpu_s(process.pid)
        done, _ = load(url, seconds, concurrency, body=BODY, headers=HEADERS)
        cpu = cpu_s(process.pid) - cpu
    finally:
        stop(process)
    return done / seconds, 1000 * cpu / max(1, done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    fake, errors, fake_cpu = measure_fake(args.seconds, args.concurrency)
    bare, bare_cpu = measure_bare(args.seconds, args.concurrency)
    print(
        f"fake (openai wire, journal on): {fake:8,.0f} completions/s  "
        f"{fake_cpu:.3f} ms CPU each  ({errors} errors)"
    )
    print(f"bare aiohttp JSON server:       {bare:8,.0f} responses/s    {bare_cpu:.3f} ms CPU each")
    print(f"ratio fake / bare (throughput): {fake / bare:8.2f}")
    print(f"one core at the fake's CPU cost: {1000 / fake_cpu:8,.0f} completions/s")
    print(f"target >= 3,000/s:               {'met' if fake >= 3000 else 'missed'}")


if __name__ == "__main__":
    main()
