"""Benchmark: the gateway against a bare aiohttp pass-through proxy and the LiteLLM proxy.

Each proxy runs in its own process (one worker, one asyncio loop) in front of the same
fake OpenAI upstream (`blastradius fakes`); a closed-loop load generator in this process
keeps `--concurrency` keep-alive connections busy with small non-streamed chat
completions for `--seconds`. For each proxy it prints completions/s, the proxy's CPU
milliseconds per completion (from /proc/PID/stat, its live children included) and its
RSS after the run, then the ratios the issue sets targets for.

The gateway runs a real production policy: two deployments with breakers, the retry
budget and the domain detector on, a tenant with a hashed key, rate limits and a spend
cap (so the ledger is consulted per request), and `--audit-log` writing every row.
The bare proxy is the floor of any aiohttp proxy: parse the body, set the upstream model,
POST it upstream on a pooled session, return the upstream's bytes. LiteLLM comes from a
separate venv (`--litellm PATH`, default /tmp/litellm-venv/bin/litellm); without it that
column is skipped with a message.

`--plain-clients stream|whole|both` sets the gateway's
`resilience.streaming.plain_clients` (default `stream`, the policy default: upstream
calls are streamed even for these non-streaming clients); `both` measures the gateway
once in each mode and reports the targets for each.

Run: `python benchmarks/gateway_throughput.py [--seconds 5] [--concurrency 32]
[--plain-clients both]`.
Profile the gateway: add `--profile FILE` (cProfile of the serve process, pstats file).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
CLIENT_KEY = "sk-bench-client"

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

GATEWAY_POLICY = """
name: bench-production
deployments:
  - id: gpt-4o@openai
    protocol: openai
    base_url: {base_url}
    model: gpt-4o
    api_key: sk-upstream
    price: {{input_per_mtok: 2.50, output_per_mtok: 10.00}}
    context_window: 128000
    capabilities: [tools, streaming, json]
    region: us
    domains: [vendor:openai, edge:cloudflare, cloud:azure]
  - id: gpt-4o-mini@openai
    protocol: openai
    base_url: {base_url}
    model: gpt-4o-mini
    api_key: sk-upstream
    price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}
    context_window: 128000
    capabilities: [tools, streaming, json]
    region: us
    domains: [vendor:openai, edge:cloudflare, cloud:azure]
routes:
  - name: default
    strategy: ordered
    targets: [gpt-4o@openai]
    fallbacks: [gpt-4o-mini@openai]
resilience:
  timeouts: {{connect_s: 5, first_token_s: 30, stream_idle_s: 30, total_s: 120}}
  retries: {{max_attempts_per_deployment: 2}}
  budget: {{enabled: true}}
  breaker: {{enabled: true}}
  domains: {{enabled: true}}
  streaming: {{plain_clients: {plain_clients}}}
tenants:
  bench:
    key_sha256: [{key_sha256}]
    limits: {{rpm: 100000000, tpm: 1000000000000}}
    spend: {{window_s: 3600, hard_usd: 1000000}}
"""

BARE_PROXY = """
import json
import sys
import aiohttp
from aiohttp import web
UPSTREAM = sys.argv[2]
async def session_ctx(app):
    app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    yield
    await app["session"].close()
async def handle(request):
    body = json.loads(await request.read())
    body["model"] = "gpt-4o"  # the one routing step: client name -> upstream model
    async with request.app["session"].post(
        UPSTREAM, data=json.dumps(body), headers={"Content-Type": "application/json",
                                      "Authorization": "Bearer sk-upstream"}
    ) as upstream:
        payload = await upstream.read()
        return web.Response(body=payload, status=upstream.status,
                            content_type="application/json")
app = web.Application()
app.cleanup_ctx.append(session_ctx)
app.router.add_post("/v1/chat/completions", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

LITELLM_CONFIG = """
model_list:
  - model_name: default
    litellm_params:
      model: openai/gpt-4o
      api_base: {base_url}
      api_key: sk-upstream
litellm_settings:
  telemetry: false
"""

REQUEST = {"model": "default", "messages": [{"role": "user", "content": "Say hello."}]}


@dataclass(frozen=True, slots=True)
class Figures:
    """One proxy's measurement."""

    name: str
    rps: float
    cpu_ms: float
    rss_mb: float
    errors: int


async def load(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    """Completions answered 200 and other answers over `seconds` of closed-loop load."""
    done = errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    body = json.dumps(REQUEST).encode()
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


def _descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (LiteLLM may fork workers)."""
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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (Linux /proc)."""
    total = 0
    for each in _descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB."""
    total_kb = 0
    for each in _descendants(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen within {timeout_s:.0f} s") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def measure(
    name: str,
    command: list[str],
    base: str,
    args: argparse.Namespace,
    *,
    env: dict[str, str] | None = None,
    startup_s: float = 30.0,
) -> Figures:
    """Start one proxy, warm it up, load it, read its CPU and RSS, stop it."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_http(base, process, name, startup_s)
        url = base + "/v1/chat/completions"
        done, errors = asyncio.run(load(url, 1.0, args.concurrency))  # warm-up
        if not done:
            raise RuntimeError(f"{name} answered no request during warm-up ({errors} errors)")
        cpu = _cpu_s(process.pid)
        done, errors = asyncio.run(load(url, args.seconds, args.concurrency))
        cpu = _cpu_s(process.pid) - cpu
        rss = _rss_mb(process.pid)
    finally:
        _stop(process)
    return Figures(name, done / args.seconds, 1000 * cpu / max(1, done), rss, errors)


def _row(figures: Figures) -> str:
    return (
        f"{figures.name:<34} {figures.rps:9,.0f} req/s  {figures.cpu_ms:7.3f} ms CPU/req  "
        f"{figures.rss_mb:6.0f} MB RSS  ({figures.errors} errors)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--litellm", default="/tmp/litellm-venv/bin/litellm")
    parser.add_argument("--profile", type=Path, help="cProfile the gateway into this file")
    parser.add_argument(
        "--plain-clients",
        choices=("stream", "whole", "both"),
        default="stream",
        help="the gateway's resilience.streaming.plain_clients; `both` measures each",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        world = scratch / "upstream.yaml"
        world.write_text(UPSTREAM, encoding="utf-8")
        ready_file = scratch / "ready.json"
        fakes = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "fakes", "--world", str(world),
             "--ready-file", str(ready_file)],
            cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not ready_file.exists():
                if fakes.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the fake upstream did not start")
                time.sleep(0.05)
            base_url = json.loads(ready_file.read_text())["deployments"]["gpt-4o@openai"][
                "base_url"
            ]
            results = run_all(args, scratch, base_url)
        finally:
            _stop(fakes)
    report(results)


def measure_gateway(
    args: argparse.Namespace, scratch: Path, base_url: str, plain_clients: str
) -> Figures:
    """The gateway with the production policy, its plain clients served `plain_clients`."""
    digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
    policy = scratch / f"gateway-{plain_clients}.yaml"
    policy.write_text(
        GATEWAY_POLICY.format(base_url=base_url, key_sha256=digest, plain_clients=plain_clients)
    )
    audit = scratch / f"audit-{plain_clients}.jsonl"
    port = _free_port()
    serve = ["-m", "simulator.cli", "serve", "--policy", str(policy), "--port", str(port),
             "--audit-log", str(audit)]  # fmt: skip
    if args.profile is not None:
        profile = args.profile
        if args.plain_clients == "both":
            profile = profile.with_name(f"{profile.stem}-{plain_clients}{profile.suffix}")
        serve = ["-m", "cProfile", "-o", str(profile), *serve]
    figures = measure(f"gateway (policy + audit log, {plain_clients})", [sys.executable, *serve],
                      f"http://127.0.0.1:{port}", args)  # fmt: skip
    lines = audit.read_text().count("\n") if audit.exists() else 0
    print(f"gateway audit log ({plain_clients}): {lines:,} rows written", file=sys.stderr)
    return figures


def run_all(args: argparse.Namespace, scratch: Path, base_url: str) -> list[Figures]:
    """Measure the gateway (in one mode or both), the bare proxy and (if installed) LiteLLM.

    The result lists the gateway figures first, then the bare proxy, then LiteLLM.
    """
    modes = ("stream", "whole") if args.plain_clients == "both" else (args.plain_clients,)
    results = [measure_gateway(args, scratch, base_url, mode) for mode in modes]
    port = _free_port()
    upstream = base_url + "/chat/completions"
    results.append(
        measure("bare aiohttp pass-through proxy",
                [sys.executable, "-c", BARE_PROXY, str(port), upstream],
                f"http://127.0.0.1:{port}", args)
    )  # fmt: skip
    litellm = Path(args.litellm)
    if not litellm.exists():
        print(
            f"LiteLLM: skipped: {litellm} not found (python -m venv /tmp/litellm-venv && "
            "/tmp/litellm-venv/bin/pip install 'litellm[proxy]')",
            file=sys.stderr,
        )
        return results
    config = scratch / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(base_url=base_url), encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price-map download at start-up
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": CLIENT_KEY,  # the proxy refuses to start without one
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    try:
        results.append(
            measure("LiteLLM proxy (1 worker)",
                    [str(litellm), "--config", str(config), "--port", str(port),
                     "--num_workers", "1"],
                    f"http://127.0.0.1:{port}", args, env=env, startup_s=120.0)
        )  # fmt: skip
    except RuntimeError as problem:
        print(f"LiteLLM: skipped: {problem}", file=sys.stderr)
    return results


def report(results: list[Figures]) -> None:
    """Print the figures and the issue's targets, for each gateway mode measured."""
    for figures in results:
        print(_row(figures))
    gateways = [figures for figures in results if figures.name.startswith("gateway")]
    bare = results[len(gateways)]
    litellm = results[len(gateways) + 1] if len(results) > len(gateways) + 1 else None
    for gateway in gateways:
        mode = gateway.name.rsplit(", ", 1)[-1].rstrip(")")
        print(f"-- plain_clients: {mode}")
        share = gateway.rps / bare.rps
        print(f"gateway / bare throughput:         {share:9.2f}   (target >= 0.60)")
        print(f"gateway CPU per request:           {gateway.cpu_ms:9.3f} ms (target <= 0.300)")
        print(f"gateway RSS:                       {gateway.rss_mb:9.0f} MB (target < 120)")
        if litellm is not None:
            ratio = gateway.rps / litellm.rps
            print(f"gateway / LiteLLM throughput:      {ratio:9.1f}x  (target >= 40)")
            print(f"LiteLLM / gateway CPU per request: {litellm.cpu_ms / gateway.cpu_ms:9.1f}x")
        else:
            print("gateway / LiteLLM throughput:      n/a (LiteLLM not measured)")


if __name__ == "__main__":
    main()
