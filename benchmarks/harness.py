"""What the benchmark scripts share: a fake upstream, closed-loop load, /proc readings.

Each benchmark runs its subjects as separate processes and loads them from this one, so
they all need the same few things: the one-deployment fake OpenAI world as upstream
(`fake_world`), a closed-loop load generator (`load`), a free port, waiting for a
process to listen, stopping it, and the CPU seconds and RSS of a process and its live
children from /proc (Linux). Run the scripts from the repository root, as
`python benchmarks/NAME.py`: this module is found beside them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from router.server.serve import event_loop

ROOT = Path(__file__).resolve().parents[1]

UPSTREAM = """
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
    targets: [gpt-4o@openai]
"""
"""The fake world every benchmark's upstream serves: one OpenAI deployment."""


def load(
    url: str, seconds: float, concurrency: int, *, body: bytes, headers: Mapping[str, str]
) -> tuple[int, int]:
    """Completions answered 200 and other answers over `seconds` of closed-loop load.

    The load runs on uvloop where it is installed, as the subjects and the fake upstream
    do (`--loop auto`): the load generator shares a core with the upstream, and the
    cheaper that side is, the less it bounds what the proxy under test is measured at.
    """
    with asyncio.Runner(loop_factory=event_loop("auto")[1]) as runner:
        return runner.run(_load(url, seconds, concurrency, body=body, headers=headers))


async def _load(
    url: str, seconds: float, concurrency: int, *, body: bytes, headers: Mapping[str, str]
) -> tuple[int, int]:
    done = errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok = response.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                done += ok
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors


@contextmanager
def fake_world(world: str = UPSTREAM) -> Iterator[dict[str, Any]]:
    """`blastradius fakes` serving `world` in its own process; yields its ready document."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "world.yaml"
        path.write_text(world, encoding="utf-8")
        ready_file = Path(scratch) / "ready.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "fakes", "--world", str(path),
             "--ready-file", str(ready_file)],
            cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not ready_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the fake upstream did not start")
                time.sleep(0.05)
            ready: dict[str, Any] = json.loads(ready_file.read_text())
            ready["pid"] = process.pid
            yield ready
        finally:
            stop(process)


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (a proxy may fork workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (Linux /proc)."""
    total = 0
    for each in descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB."""
    total_kb = 0
    for each in descendants(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (as of now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_listening(
    port: int, process: subprocess.Popen[bytes], name: str, timeout_s: float
) -> None:
    """Return once `process` accepts connections on `port`; RuntimeError if it dies or is late."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen within {timeout_s:.0f} s") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate `process` and wait for it (kill after 15 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
