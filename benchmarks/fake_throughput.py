"""Benchmark: simple completions per second one fake provider serves on one core.

The fake runs in its own process (one asyncio loop: one core); a load generator in
this process keeps `--concurrency` keep-alive connections busy with small non-streamed
OpenAI chat completions for `--seconds`. The baseline runs side by side under the same
load: a bare aiohttp server answering a fixed JSON body, the ceiling for any aiohttp
server on this machine, so the ratio says what the fake's parsing, fault checks, journal
and wire rendering cost. The issue's target is ≥ 3,000 completions/s.

Run: `python benchmarks/fake_throughput.py [--seconds 5] [--concurrency 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

POLICY = """
deployments:
  - id: gpt-4o@openai
    protocol: openai
    base_url: https://api.openai.com/v1
    model: gpt-4o
    price: {input_per_mtok: 2.50, output_per_mtok: 10.00}
    context_window: 128000
    region: us
    domains: [vendor:openai]
routes:
  - name: default
    strategy: ordered
    targets: [gpt-4o@openai]
"""

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
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


async def load(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    """Completions answered 200 and errors over `seconds` of closed-loop load."""
    done = errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    body = json.dumps(REQUEST).encode()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        done += 1
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors


def _wait_ready(path: Path, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the fake world did not start")
        time.sleep(0.05)
    document: dict[str, object] = json.loads(path.read_text())
    return document


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def measure_fake(seconds: float, concurrency: int) -> tuple[float, int, float]:
    """Completions/s, errors, and the fake's CPU milliseconds per completion."""
    with tempfile.TemporaryDirectory() as scratch:
        policy = Path(scratch) / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        ready_file = Path(scratch) / "ready.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "fakes", "--world", str(policy),
             "--ready-file", str(ready_file)],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            ready = _wait_ready(ready_file, process)
            deployments = ready["deployments"]
            assert isinstance(deployments, dict)
            url = deployments["gpt-4o@openai"]["base_url"] + "/chat/completions"
            asyncio.run(load(url, 1.0, concurrency))  # warm-up
            cpu = _cpu_s(process.pid)
            done, errors = asyncio.run(load(url, seconds, concurrency))
            cpu = _cpu_s(process.pid) - cpu
        finally:
            process.terminate()
            process.wait(10)
    return done / seconds, errors, 1000 * cpu / max(1, done)


def measure_bare(seconds: float, concurrency: int) -> tuple[float, float]:
    """Responses/s and the bare server's CPU milliseconds per response."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        deadline = time.monotonic() + 20
        while True:
            try:
                asyncio.run(load(url, 0.2, 1))
                break
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("the bare server did not start") from None
                time.sleep(0.1)
        asyncio.run(load(url, 1.0, concurrency))
        cpu = _cpu_s(process.pid)
        done, _ = asyncio.run(load(url, seconds, concurrency))
        cpu = _cpu_s(process.pid) - cpu
    finally:
        process.terminate()
        process.wait(10)
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
