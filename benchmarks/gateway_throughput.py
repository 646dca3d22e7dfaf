"""Benchmark: the gateway against a bare aiohttp pass-through proxy and the LiteLLM proxy.

Each proxy runs in its own process (one worker, one asyncio loop) in front of the same
fake OpenAI upstream (`blastradius fakes`); a closed-loop load generator in this process
keeps `--concurrency` keep-alive connections busy with small non-streamed chat
completions for `--seconds`. For each proxy it prints completions/s, the proxy's CPU
milliseconds per completion (from /proc/PID/stat, its live children included), the
*capacity* that implies (1000 / CPU ms: completions per second one core sustains) and its
RSS after the run, then the ratios the issue sets targets for, measured and by capacity.

With two or more CPUs the proxy is pinned to the first and the load generator and the
fake upstream to the others (`--no-pin` to let them share): each proxy gets one whole
core, as "one worker" means. The measured throughput of a cheap proxy is then bounded
by the load side's core, not its own, which is why capacity is printed beside it.

The gateway runs a real production policy: two deployments with breakers, the retry
budget and the domain detector on, a tenant with a hashed key, rate limits and a spend
cap (so the ledger is consulted per request), and `--audit-log` writing every row.
The bare proxy is the floor of any aiohttp proxy: parse the body, set the upstream model,
POST it upstream on a pooled session, return the upstream's bytes. LiteLLM comes from a
separate venv (`--litellm PATH`, default /tmp/litellm-venv/bin/litellm); without it that
column is skipped with a message. LiteLLM is measured twice: with a minimal config (one
deployment) and like-for-like — the same two deployments as a fallback chain, a retry,
cooldowns after failures (its breaker), rpm/tpm limits with pre-call checks, a budget and
a JSON-lines logging callback (its audit log).

The gateway and the bare proxy run on uvloop, as `blastradius serve` does by default and
as LiteLLM's proxy does (uvicorn with `loop="uvloop"`); `--loop asyncio` runs both on the
standard library's loop instead. The load generator and the fake upstream run on uvloop
either way, so the core they share bounds the measured throughput as little as it can.

`--plain-clients stream|whole|both` sets the gateway's
`resilience.streaming.plain_clients` (default `stream`, the policy default: upstream
calls are streamed even for these non-streaming clients); `both` measures the gateway
once in each mode and reports the targets for each.

Run: `python benchmarks/gateway_throughput.py [--seconds 5] [--concurrency 32]
[--plain-clients both] [--loop asyncio]`.
Profile the gateway: add `--profile FILE` (cProfile of the serve process, pstats file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import ROOT, cpu_s, fake_world, free_port, load, rss_mb, stop, wait_listening

CLIENT_KEY = "sk-bench-client"


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
loop = None
if sys.argv[3] == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop)
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

LITELLM_LIKE_FOR_LIKE = """
model_list:
  - model_name: default
    litellm_params:
      model: openai/gpt-4o
      api_base: {base_url}
      api_key: sk-upstream
      rpm: 100000000
      tpm: 1000000000000
  - model_name: default-fallback
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {base_url}
      api_key: sk-upstream
      rpm: 100000000
      tpm: 1000000000000
router_settings:
  num_retries: 1
  fallbacks: [{{"default": ["default-fallback"]}}]
  allowed_fails: 3
  cooldown_time: 30
  enable_pre_call_checks: true
  timeout: 120
litellm_settings:
  telemetry: false
  callbacks: bench_audit.handler
  max_budget: 1000000
  budget_duration: 1h
"""

LITELLM_AUDIT = """
import json
from litellm.integrations.custom_logger import CustomLogger


class AuditLog(CustomLogger):
    def __init__(self):
        super().__init__()
        self.file = open({path!r}, "a", encoding="utf-8")

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.file.write(json.dumps(kwargs.get("standard_logging_object"), default=str) + "\\n")

    async_log_failure_event = async_log_success_event  # the same line for a failure


handler = AuditLog()
"""

REQUEST = {"model": "default", "messages": [{"role": "user", "content": "Say hello."}]}
BODY = json.dumps(REQUEST).encode()
HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Figures:
    """One proxy's measurement."""

    name: str
    rps: float
    cpu_ms: float
    rss_mb: float
    errors: int

    @property
    def capacity(self) -> float:
        """Completions per second one core sustains at this CPU cost."""
        return 1000 / self.cpu_ms if self.cpu_ms else 0.0


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
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_pinned(args.proxy_cpus),
    )  # fmt: skip
    try:
        wait_listening(int(base.rsplit(":", 1)[1]), process, name, startup_s)
        url = base + "/v1/chat/completions"
        done, errors = load(url, 1.0, args.concurrency, body=BODY, headers=HEADERS)  # warm-up
        if not done:
            raise RuntimeError(f"{name} answered no request during warm-up ({errors} errors)")
        cpu = cpu_s(process.pid)
        done, errors = load(url, args.seconds, args.concurrency, body=BODY, headers=HEADERS)
        cpu = cpu_s(process.pid) - cpu
        rss = rss_mb(process.pid)
    finally:
        stop(process)
    return Figures(name, done / args.seconds, 1000 * cpu / max(1, done), rss, errors)


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A pre-exec hook that keeps a child on `cpus` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _row(figures: Figures) -> str:
    return (
        f"{figures.name:<44} {figures.rps:7,.0f} req/s {figures.cpu_ms:7.3f} ms CPU/req "
        f"{figures.capacity:7,.0f} req/s/core {figures.rss_mb:5.0f} MB RSS "
        f"({figures.errors} errors)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--litellm", default="/tmp/litellm-venv/bin/litellm")
    parser.add_argument("--profile", type=Path, help="cProfile the gateway into this file")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(os.sched_getaffinity(0)) >= 2,
        help="proxy on the first CPU, load and upstream on the others (default with >= 2 CPUs)",
    )
    parser.add_argument(
        "--plain-clients",
        choices=("stream", "whole", "both"),
        default="stream",
        help="the gateway's resilience.streaming.plain_clients; `both` measures each",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop of the gateway and the bare proxy (uvloop, as LiteLLM's)",
    )
    args = parser.parse_args()
    args.proxy_cpus = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        args.proxy_cpus = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))  # the load generator, and the fakes it starts
    with tempfile.TemporaryDirectory() as scratch_dir, fake_world() as upstream:
        base_url = upstream["deployments"]["gpt-4o@openai"]["base_url"]
        results = run_all(args, Path(scratch_dir), base_url)
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
    port = free_port()
    serve = ["-m", "simulator.cli", "serve", "--policy", str(policy), "--port", str(port),
             "--audit-log", str(audit), "--loop", args.loop]  # fmt: skip
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

    The result lists the gateway figures first, then the bare proxy, then each LiteLLM
    config measured (minimal, like-for-like).
    """
    modes = ("stream", "whole") if args.plain_clients == "both" else (args.plain_clients,)
    results = [measure_gateway(args, scratch, base_url, mode) for mode in modes]
    port = free_port()
    upstream = base_url + "/chat/completions"
    results.append(
        measure("bare aiohttp pass-through proxy",
                [sys.executable, "-c", BARE_PROXY, str(port), upstream, args.loop],
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
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price-map download at start-up
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": CLIENT_KEY,  # the proxy refuses to start without one
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    (scratch / "bench_audit.py").write_text(
        LITELLM_AUDIT.format(path=str(scratch / "litellm-audit.jsonl")), encoding="utf-8"
    )
    for label, template in (("minimal", LITELLM_CONFIG), ("like-for-like", LITELLM_LIKE_FOR_LIKE)):
        config = scratch / f"litellm-{label}.yaml"
        config.write_text(template.format(base_url=base_url), encoding="utf-8")
        port = free_port()
        try:
            results.append(
                measure(f"LiteLLM proxy (1 worker, {label})",
                        [str(litellm), "--config", str(config), "--port", str(port),
                         "--num_workers", "1"],
                        f"http://127.0.0.1:{port}", args, env=env, startup_s=120.0)
            )  # fmt: skip
        except RuntimeError as problem:
            print(f"LiteLLM ({label}): skipped: {problem}", file=sys.stderr)
    return results


def report(results: list[Figures]) -> None:
    """Print the figures and the issue's targets, for each gateway mode measured.

    Each throughput ratio is printed twice: as measured side by side, and by capacity
    (the inverse ratio of CPU per request), which the load side's core cannot bound.
    """
    for figures in results:
        print(_row(figures))
    gateways = [figures for figures in results if figures.name.startswith("gateway")]
    bare = results[len(gateways)]
    litellms = results[len(gateways) + 1 :]
    for gateway in gateways:
        mode = gateway.name.rsplit(", ", 1)[-1].rstrip(")")
        print(f"-- plain_clients: {mode}                    measured  by capacity")
        print(
            f"gateway / bare throughput:          {gateway.rps / bare.rps:8.2f}  "
            f"{gateway.capacity / bare.capacity:8.2f}    (target >= 0.60)"
        )
        print(f"gateway CPU per request:            {gateway.cpu_ms:8.3f} ms         "
              "(target <= 0.300)")  # fmt: skip
        print(f"gateway RSS:                        {gateway.rss_mb:8.0f} MB         "
              "(target < 120)")  # fmt: skip
        if not litellms:
            print("gateway / LiteLLM throughput:       n/a (LiteLLM not measured)")
        for litellm in litellms:
            label = litellm.name.rsplit(", ", 1)[-1].rstrip(")")
            print(
                f"gateway / LiteLLM ({label + '):':<15}{gateway.rps / litellm.rps:7.1f}x "
                f"{gateway.capacity / litellm.capacity:8.1f}x    (target >= 40)"
            )


if __name__ == "__main__":
    main()
