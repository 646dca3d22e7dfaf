"""Live runs: the real gateway, over real HTTP, against the fake world, on a real clock.

`blastradius run SCENARIO --live` is the simulated run's twin: the same scenario, the same
policy, the same traffic plan (seed for seed), but the router is `router.server` serving
HTTP, the providers are `fakes.server` speaking each vendor's wire format with the
scenario's fault timeline replayed in real time, and DNS goes through the harness's
resolver so DNS faults reach the router's connection pools. The trace comes from the
gateway's own engine, so `reports/` computes the same metrics from it.

**Time.** `--speedup X` plays the scenario X times faster: arrivals and the fault
timeline are compressed, but latencies, timeouts, backoff and breaker windows stay real
(they are the router's and the providers' own). So a live run reports in *real* seconds:
fault windows and the run's length are divided by X before metrics are computed, and
TTD/TTF/TTR are how fast the real router actually reacted.

**Clients.** Each arrival is one OpenAI-SDK-shaped call to the gateway with the scenario's
client layer: its timeout, retries of timeouts, 429s and 5xx with the backoff the
simulator's clients use, and abandonment (each call carries `x-stainless-retry-count`, as
the OpenAI SDK sends it, which the trace keeps as `client_attempt`); a prompt sized to the
drawn input tokens and `max_tokens` to the output.

**Loop.** The gateway, the fakes and the clients share one event loop: uvloop where it is
installed, the loop `blastradius serve` runs the gateway on.

**Fallback drills** (`blastradius evidence --live`, `run_drills`): no scenario, no
timeline. One fake world of the policy; per subject of the substitutability matrix a
fresh gateway (fresh breakers, no pooled connections), one control-API fault that removes
the subject, and a handful of plain chat requests per route that depended on it. What
the client saw becomes the drill's record (`reports.drills`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pandas as pd
from aiohttp import web
from pydantic import SecretStr

from fakes.server.dns import ControlledResolver
from fakes.server.world import FakeWorld
from reports.drills import DrillAnswer, drill_fault, drill_record, drill_routes
from reports.metrics import FaultWindow, RunContext
from router.core.backoff import Backoff
from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Policy
from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS, TraceRecorder
from router.server.app import DRIVERS, REASON_HEADER, create_app
from router.server.client_context import REQUEST_ID_HEADER, RETRY_HEADER, TASK_HEADER
from router.server.serve import event_loop
from router.server.stream import DEPLOYMENT_HEADER
from scenarios.scenario_files import LoadedScenario
from scenarios.schema import Task
from simulator.traffic import TrafficPlan

__all__ = [
    "DEFAULT_DRILL_REQUESTS",
    "DEFAULT_MAX_RATE",
    "LiveResult",
    "live_context",
    "run_drills",
    "run_live",
]

DEFAULT_MAX_RATE = 200.0
"""Mean real-time requests/s a live run may ask of this machine before it refuses."""

DEFAULT_DRILL_REQUESTS = 6
"""Requests per route and drill: enough to see a breaker open and the fallback keep serving."""

_SERVED_LOOP = event_loop("auto")[1]
"""Live runs and drills run on the loop `blastradius serve` runs the gateway on (uvloop
where installed), so what they prove holds for the gateway as it is run."""

_WORDS = ("route", "breaker", "domain", "budget", "edge", "replica", "quorum", "ledger")


@dataclass(slots=True)
class LiveResult:
    """What a live run leaves: the gateway's trace, the providers' journal, timings."""

    attempts: pd.DataFrame
    requests: pd.DataFrame
    journal: list[dict[str, Any]]
    reasons: dict[str, int]
    providers: dict[str, dict[str, Any]]
    wall_s: float
    speedup: float
    client_errors: dict[str, int] = field(default_factory=dict)


def live_context(context: RunContext, speedup: float) -> RunContext:
    """The simulated run's context in a live run's real seconds (÷ speedup)."""
    return RunContext(
        duration=context.duration / speedup,
        faults=tuple(
            FaultWindow(
                start=w.start / speedup,
                end=w.end / speedup,
                targets=w.targets,
                open_ended=w.open_ended,
            )
            for w in context.faults
        ),
        recovery_window=context.recovery_window / speedup,
        primaries=context.primaries,
    )


def _tenant_keys(policy: Policy, tenants: tuple[str, ...]) -> dict[str, str]:
    """A fresh key per tenant, for this run only (policies store only key digests)."""
    return {name: f"live-{name}-{random.SystemRandom().getrandbits(64):x}" for name in tenants}


def _live_policy(policy: Policy, world: FakeWorld, keys: dict[str, str]) -> Policy:
    """The scenario's policy pointed at the fakes, with this run's tenant keys.

    Base URLs keep the vendor's host name (with the fake's port), so every new connection
    is resolved through the harness's resolver, where DNS faults live. A deployment without
    a key gets a placeholder: the fakes check that a key is sent, not which.
    """
    deployments = [
        d.model_copy(
            update={
                "base_url": world.base_url(d, by_name=True),
                "api_key": d.api_key or SecretStr("live-run-key"),
            }
        )
        for d in policy.deployments
    ]
    tenants = {
        name: tenant.model_copy(
            update={"key_sha256": (hashlib.sha256(keys[name].encode()).hexdigest(),)}
        )
        for name, tenant in policy.tenants.items()
        if name in keys
    }
    tenants.update({n: t for n, t in policy.tenants.items() if n not in tenants})
    return policy.model_copy(update={"deployments": deployments, "tenants": tenants})


def _prompt(tokens: int, index: int) -> str:
    """About `tokens` tokens of text (the shared counter: ⌈bytes ÷ 4⌉) that vary per call."""
    words = [_WORDS[(index + i) % len(_WORDS)] for i in range(max(1, tokens - 7))]
    return " ".join(words)[: max(4, (tokens - 6) * 4)]


@dataclass(slots=True)
class _Client:
    """The scenario's client layer, calling the gateway over one keep-alive pool."""

    session: aiohttp.ClientSession
    url: str
    loaded: LoadedScenario
    keys: dict[str, str]
    rng: random.Random
    outcomes: Counter[str] = field(default_factory=Counter)

    async def call(
        self, cid: str, tenant: str, task: Task, route: str, inputs: int, outputs: int
    ) -> None:
        client = self.loaded.scenario.traffic.client
        body = {
            "model": route,
            "messages": [{"role": "user", "content": _prompt(inputs, len(cid))}],
            "max_tokens": int(task.max_output_tokens or outputs),
            "stream": task.stream,
        }
        if task.stream:
            body["stream_options"] = {"include_usage": True}
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", TASK_HEADER: task.name}
        if tenant in self.keys:
            headers["Authorization"] = f"Bearer {self.keys[tenant]}"
        backoff = Backoff(client.backoff.kind, base_s=client.backoff.base, cap_s=client.backoff.cap)
        waited = 0.0
        for attempt in range(client.retries + 1):
            if attempt:
                if client.abandon_probability and self.rng.random() < client.abandon_probability:
                    return
                waited = backoff.delay(attempt - 1, waited, self.rng)
                await asyncio.sleep(waited)
            headers[REQUEST_ID_HEADER] = cid if attempt == 0 else f"{cid}.{attempt}"
            headers[RETRY_HEADER] = str(attempt)
            verdict = await self._once(payload, headers, client.timeout, task.stream)
            self.outcomes[verdict] += 1
            if verdict in ("ok", "client_error"):
                return

    async def _once(
        self, payload: bytes, headers: dict[str, str], timeout: float, stream: bool
    ) -> str:
        try:
            async with asyncio.timeout(timeout):
                async with self.session.post(self.url, data=payload, headers=headers) as answer:
                    text = await answer.text()
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError:
            return "connection"
        if answer.status != 200:
            retryable = answer.status in (408, 409, 429) or answer.status >= 500
            return "server_error" if retryable else "client_error"
        if stream and ('"error"' in text or "[DONE]" not in text):
            return "stream_error"
        return "ok"


def _frames(trace: TraceRecorder, t0: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gateway's rows as the simulator's DataFrames, times from the traffic start.

    A client retry went out as `<id>.<k>`; it becomes request `<id>` again, as in the
    simulator, where the trace tells the layers apart by `client_attempt` and `origin`.
    """
    attempts = pd.DataFrame(trace.attempt_dicts(), columns=list(ATTEMPT_COLUMNS))
    requests = pd.DataFrame(trace.request_dicts(), columns=list(REQUEST_COLUMNS))
    timed = ((attempts, ("arrival_s", "start_s", "end_s")), (requests, ("arrival_s", "done_s")))
    for frame, columns in timed:
        for column in columns:
            frame[column] = frame[column].astype(float) - t0
        frame["request_id"] = frame["request_id"].astype(str).str.replace(r"\.\d+$", "", regex=True)
    return attempts, requests


def _providers(journal: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The providers' view: attempts and outcomes per deployment, from the journal."""
    view: dict[str, dict[str, Any]] = {}
    for entry in journal:
        seen = view.setdefault(entry["deployment"] or "(unknown)", {"attempts": 0, "outcomes": {}})
        seen["attempts"] += 1
        outcome = entry["outcome"] or "unfinished"
        seen["outcomes"][outcome] = seen["outcomes"].get(outcome, 0) + 1
    return view


async def _start_gateway(
    policy: Policy,
    resolver: ControlledResolver,
    seed: int,
    trace: TraceRecorder | None,
    *,
    source: str,
) -> tuple[web.AppRunner, str]:
    """The gateway for `policy` on 127.0.0.1, port 0: its runner and chat-completions URL.

    A policy the gateway refuses to serve is the user's to fix: a ConfigError naming
    `source`, not a traceback.
    """
    try:
        app = create_app(policy, resolver=resolver, rng=random.Random(seed), trace=trace)
    except ValueError as problem:
        issue = ConfigIssue(file=source, line=None, field="", message=str(problem))
        raise ConfigError([issue]) from None
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    return runner, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"


async def _run(
    loaded: LoadedScenario,
    *,
    seed: int,
    speedup: float,
    progress: Callable[[float], None] | None,
) -> LiveResult:
    scenario = loaded.scenario
    plan = TrafficPlan(
        scenario.traffic, duration=scenario.duration, seed=seed, base_dir=loaded.path.parent
    )
    routes = {route.name for route in loaded.policy.routes}
    task_routes = [task.route_in(routes) for task in plan.tasks]
    world = FakeWorld(loaded.policy, scenario, speedup=speedup, seed=seed)
    ready = await world.start()
    keys = _tenant_keys(loaded.policy, plan.tenants)
    resolver = ControlledResolver(ready["control"])
    trace = TraceRecorder()
    live_policy = _live_policy(loaded.policy, world, keys)
    try:
        runner, url = await _start_gateway(
            live_policy, resolver, seed, trace, source=str(loaded.policy_path)
        )
    except ConfigError:
        await resolver.close()
        await world.stop()
        raise
    app = runner.app
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    client = _Client(session, url, loaded, keys, random.Random(seed))
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    try:
        world.zero_clock()
        t0 = app[DRIVERS].driver.now()
        origin = loop.time()
        count = 0
        for batch in plan.batches():
            for when, tenant, task_id, inputs, outputs in zip(
                batch.times.tolist(), batch.tenant.tolist(), batch.task.tolist(),
                batch.input_tokens.tolist(), batch.output_tokens.tolist(), strict=True,
            ):  # fmt: skip
                route = task_routes[task_id]
                if route is None:
                    continue
                delay = origin + when / speedup - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                count += 1
                task = plan.tasks[task_id]
                call = client.call(f"r{count}", plan.tenants[tenant], task, route, inputs, outputs)
                job = asyncio.create_task(call)
                pending.add(job)
                job.add_done_callback(pending.discard)
            if progress is not None:
                progress(min(scenario.duration, (loop.time() - origin) * speedup))
        end = origin + scenario.duration / speedup
        if end > loop.time():
            await asyncio.sleep(end - loop.time())
        if pending:
            await asyncio.gather(*pending)
        if progress is not None:
            progress(scenario.duration)
    finally:
        for job in pending:
            job.cancel()
        await session.close()
        await runner.cleanup()
        await resolver.close()
        journal = world.journal.entries()
        await world.stop()
    attempts, requests = _frames(trace, t0)
    reasons = Counter(str(r) for r in requests["reason"] if r)
    return LiveResult(
        attempts=attempts,
        requests=requests,
        journal=journal,
        reasons=dict(reasons),
        providers=_providers(journal),
        wall_s=time.perf_counter() - started,
        speedup=speedup,
        client_errors=dict(client.outcomes),
    )


def run_live(
    loaded: LoadedScenario,
    *,
    seed: int,
    speedup: float = 1.0,
    max_rate: float = DEFAULT_MAX_RATE,
    progress: Callable[[float], None] | None = None,
) -> LiveResult:
    """Run one scenario live; ConfigError when it would ask more of this machine than it has."""
    scenario = loaded.scenario
    if not (math.isfinite(speedup) and speedup > 0):
        problem = f"must be positive, got {speedup}"
        raise ConfigError([ConfigIssue(file="--speedup", line=None, field="", message=problem)])
    plan = TrafficPlan(
        scenario.traffic, duration=scenario.duration, seed=seed, base_dir=loaded.path.parent
    )
    rate = plan.expected_requests() / (scenario.duration / speedup)
    if rate > max_rate:
        message = (
            f"a live run at --speedup {speedup:g} would send {rate:,.0f} requests/s on average "
            f"(limit {max_rate:,.0f}); lower --speedup or the rate "
            "(--set traffic.arrivals.rate=…), or raise --max-rate"
        )
        issue = ConfigIssue(
            file=str(loaded.path), line=None, field="traffic.arrivals", message=message
        )
        raise ConfigError([issue])
    with asyncio.Runner(loop_factory=_SERVED_LOOP) as runner:
        return runner.run(_run(loaded, seed=seed, speedup=speedup, progress=progress))


# --------------------------------------------------------------------------- fallback drills

DrillSubject = tuple[str, str, tuple[str, ...]]
"""`(subject, kind, deployment ids)`, as `reports.substitutability.subjects_of` lists them."""


def _drill_tenant(policy: Policy, route: str) -> str:
    """The tenant a drill calls `route` as ("" when the gateway has no tenants).

    One allowed on the route, preferring one without residency or compliance limits, so
    the drill tests the fallback itself rather than a tenant's narrower set of providers.
    """
    allowed = [
        name
        for name, tenant in sorted(policy.tenants.items())
        if tenant.routes is None or route in tenant.routes
    ]
    unlimited = [
        name
        for name in allowed
        if policy.tenants[name].residency is None and not policy.tenants[name].compliance
    ]
    return next(iter(unlimited or allowed or sorted(policy.tenants)), "")


async def _ask(
    session: aiohttp.ClientSession, url: str, route: str, tenant: str, key: str | None, n: int
) -> DrillAnswer:
    """One plain (non-streaming) chat request to the gateway, as any OpenAI client sends it."""
    body = {
        "model": route,
        "messages": [{"role": "user", "content": f"fallback drill {n}: {_prompt(12, n)}"}],
        "max_tokens": 16,
    }
    headers = {REQUEST_ID_HEADER: f"drill-{route}-{n}"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    started = time.perf_counter()
    try:
        async with session.post(url, json=body, headers=headers) as answer:
            await answer.read()
    except (TimeoutError, aiohttp.ClientError) as error:
        return DrillAnswer(
            route=route, tenant=tenant, status=None, served_by=None,
            error=type(error).__name__, latency_s=time.perf_counter() - started,
        )  # fmt: skip
    return DrillAnswer(
        route=route,
        tenant=tenant,
        status=answer.status,
        served_by=answer.headers.get(DEPLOYMENT_HEADER),
        reason=answer.headers.get(REASON_HEADER),
        latency_s=time.perf_counter() - started,
    )


async def _control(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> dict[str, Any]:
    """One control-API call; a refusal is a harness bug, so it raises with the answer."""
    async with session.request(method, url, json=body) as answer:
        document: dict[str, Any] = await answer.json()
        if answer.status >= 300:
            raise RuntimeError(f"control API {method} {url}: {answer.status} {document}")
    return document


async def _drill(
    session: aiohttp.ClientSession,
    world: FakeWorld,
    policy: Policy,
    keys: dict[str, str],
    subject: DrillSubject,
    *,
    requests_per_route: int,
    seed: int,
) -> dict[str, Any]:
    """One subject removed, a fresh gateway in front of the world, the routes asked."""
    name, kind, deployments = subject
    chains = {route.name: [*route.targets, *route.fallbacks] for route in policy.routes}
    routes = drill_routes(chains, deployments)
    fault = drill_fault(name, kind, deployments)
    if not routes:
        return drill_record(
            subject=name, kind=kind, deployments=deployments, fault=fault, routes=routes,
            answers=[],
        )  # fmt: skip
    control = world.describe()["control"]
    await _control(session, "POST", f"{control}/reset")
    rule = await _control(session, "POST", f"{control}/faults", fault)
    since = max((entry["seq"] for entry in world.journal.entries()), default=0)
    resolver = ControlledResolver(control)
    try:
        runner, url = await _start_gateway(policy, resolver, seed, None, source="--live")
    except ConfigError:
        await resolver.close()
        raise
    answers: list[DrillAnswer] = []
    try:
        for route, _ in routes:
            tenant = _drill_tenant(policy, route)
            for n in range(requests_per_route):
                answers.append(await _ask(session, url, route, tenant, keys.get(tenant), n))
        listed = await _control(session, "GET", f"{control}/faults")
    finally:
        await runner.cleanup()
        await resolver.close()
        await _control(session, "POST", f"{control}/reset")
    hits = next((f["hits"] for f in listed["faults"] if f["id"] == rule["id"]), 0)
    seen = _providers(world.journal.entries(since=since))
    return drill_record(
        subject=name,
        kind=kind,
        deployments=deployments,
        fault=fault,
        routes=routes,
        answers=answers,
        fault_hits=int(hits),
        provider_attempts={d: v["outcomes"] for d, v in seen.items()},
    )


async def _drills(
    policy: Policy, subjects: Sequence[DrillSubject], requests_per_route: int, seed: int
) -> list[dict[str, Any]]:
    """One world for all drills (reset between them); a fresh gateway per drill."""
    world = FakeWorld(policy, seed=seed)
    keys = _tenant_keys(policy, tuple(policy.tenants))
    timeout = aiohttp.ClientTimeout(total=policy.resilience.timeouts.total_s + 30.0)
    session = aiohttp.ClientSession(timeout=timeout)
    records: list[dict[str, Any]] = []
    try:
        await world.start()
        live_policy = _live_policy(policy, world, keys)
        for subject in subjects:
            drill = _drill(
                session, world, live_policy, keys, subject,
                requests_per_route=requests_per_route, seed=seed,
            )  # fmt: skip
            records.append(await drill)
    finally:
        await session.close()
        await world.stop()
    return records


def run_drills(
    policy: Policy,
    subjects: Sequence[DrillSubject],
    *,
    requests_per_route: int = DEFAULT_DRILL_REQUESTS,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Drill every subject over real HTTP; one record per subject (`reports.drills`).

    Proof that each fallback is *wired*: the production gateway, the policy's own routes,
    vendor wire formats and a fault the fakes really inject (a 5xx, an edge 5xx, a failed
    lookup). Every server started here is stopped before this returns, whatever happens.
    """
    if requests_per_route < 1:
        raise ValueError(f"requests_per_route must be at least 1, got {requests_per_route}")
    with asyncio.Runner(loop_factory=_SERVED_LOOP) as runner:
        return runner.run(_drills(policy, subjects, requests_per_route, seed))
