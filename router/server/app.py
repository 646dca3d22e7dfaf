"""The gateway's aiohttp application: OpenAI-compatible ingress over the real-time driver.

Routes: `POST /v1/chat/completions` (plain and SSE), `POST /v1/messages` (Anthropic
clients, `router.server.anthropic_ingress`), `GET /v1/models` (the policy's
routes), `GET /healthz` (the process is up), `GET /readyz` (pools open, not draining),
`GET /metrics` (Prometheus).
Handlers are thin: read and validate the request (`router.server.ingress`), hand it to
the driver, and turn the engine's terminal decision into the client's response.

Every error is in OpenAI's envelope; the client's own mistakes (bad JSON, wrong types,
unknown route, oversized body, bad key) are 4xx and never reach a provider. When the
engine gives up after trying, the *first* upstream error surfaces with its status and
body, and `x-blastradius-deployment` names the deployment it came from; a success names
the deployment that answered, and `usage` is what that deployment billed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from random import Random

import orjson
from aiohttp import web
from aiohttp.abc import AbstractResolver

from router.core.decisions import CompleteRequest, FailRequest
from router.core.policy import Policy
from router.core.trace import TraceRecorder
from router.server.adapters.base import openai_error_body
from router.server.anthropic_ingress import anthropic_routes
from router.server.client_context import client_context
from router.server.driver import Call, Driver, Terminal
from router.server.errors import ClientError, error_response
from router.server.fingerprints import PromptFingerprints
from router.server.ingress import read_chat
from router.server.metrics import Metrics
from router.server.pools import Pools
from router.server.reload import Drivers
from router.server.stream import DEPLOYMENT_HEADER, ClientStream

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DRIVERS",
    "METRICS",
    "REASON_HEADER",
    "create_app",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest request body accepted (8 MiB: long prompts with a few inline images)."""

REASON_HEADER = "x-blastradius-reason"
"""On an error: the engine's reason (`content_filtered`, `attempts_exhausted`, …)."""

DRIVERS = web.AppKey("drivers", Drivers)
"""The driver new requests go to (`.driver`); a policy reload swaps it."""
METRICS = web.AppKey("metrics", Metrics)
_READY = web.AppKey("ready", list)
_FINGERPRINTS = web.AppKey("fingerprints", PromptFingerprints)

_REJECT_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def _reject_message(reason: str, route: str) -> str:
    if reason == "unknown_route":
        return f"The model `{route}` does not exist: it is not a route of this gateway."
    return f"The gateway refused the request: {reason.replace('_', ' ')}."


def _tenant(request: web.Request, policy: Policy) -> str:
    """The tenant of a request; with no tenants configured, the anonymous one."""
    if not policy.tenants:
        return ""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    tenant = policy.tenant_for_key(key.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        raise ClientError(
            "Incorrect or missing API key: send `Authorization: Bearer <key>`.",
            status=401,
            code="invalid_api_key",
        )
    return tenant


async def _answer(call: Call, decision: Terminal) -> web.StreamResponse:
    """The client's response to the engine's terminal decision."""
    sink = call.sink
    if isinstance(decision, CompleteRequest):
        result = call.results[decision.attempt_id]
        if sink is not None:
            return await sink.finish(call.answer_usage(decision.attempt_id))
        return web.Response(
            body=orjson.dumps(result.completion),
            content_type="application/json",
            headers={DEPLOYMENT_HEADER: decision.served_by},
        )
    headers = {REASON_HEADER: decision.reason.value}
    if isinstance(decision, FailRequest):
        if call.first_error is not None:
            deployment, error = call.first_error
            headers[DEPLOYMENT_HEADER] = deployment
            body = dict(error.body)
        else:
            outcome = decision.outcome.value if decision.outcome is not None else "none"
            detail = f" ({decision.detail})" if decision.detail else ""
            message = (
                f"No deployment could answer after {decision.attempts} attempt(s): "
                f"{decision.reason.value}; first failure {outcome}{detail}."
            )
            body = openai_error_body(message, "upstream_error", decision.reason.value)
        if sink is not None and sink.committed:
            return await sink.fail(body)
        return error_response(decision.http_status, body, headers)
    status = decision.http_status
    message = _reject_message(decision.reason.value, call.chat.route)
    code = "model_not_found" if decision.reason.value == "unknown_route" else decision.reason.value
    body = openai_error_body(message, _REJECT_TYPES.get(status, "invalid_request_error"), code)
    return error_response(status, body, headers)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as too_large:
        raise ClientError(
            f"Request body too large: {too_large.text or 'over the limit'}",
            status=413,
            code="request_too_large",
        ) from None
    # Taken after the last await before `driver.run`: a reload that retires a driver once
    # it has no calls must not find this request half-way to it.
    driver = request.app[DRIVERS].driver
    tenant = _tenant(request, driver.policy)
    chat = read_chat(raw)
    call = driver.open(chat, tenant=tenant, context=client_context(request.headers))
    fingerprints = request.app.get(_FINGERPRINTS)
    if fingerprints is not None:
        fingerprints.note(call.id, chat.body)
    if chat.stream:
        call.sink = ClientStream(
            request,
            completion_id=call.completion_id,
            created=call.created,
            include_usage=chat.include_usage,
            hold_tokens=driver.hold_tokens,
            on_gone=lambda: driver.cancel(call),
            keep_said=driver.carries_on,
        )
    started = driver.now()
    decision = await driver.run(call)
    response = await _answer(call, decision)
    request.app[METRICS].observe_latency(chat.route, driver.now() - started)
    return response


async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models`: the routes clients may name in `model`."""
    policy = request.app[DRIVERS].policy
    cards = [
        {"id": route.name, "object": "model", "created": 0, "owned_by": "blastradius"}
        for route in policy.routes
    ]
    return web.json_response({"object": "list", "data": cards})


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: pools are open and the gateway is not draining."""
    ready = bool(request.app[_READY])
    return web.json_response({"ready": ready}, status=200 if ready else 503)


@web.middleware
async def openai_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error in OpenAI's envelope: client errors, unknown paths, and (never) bugs."""
    try:
        return await handler(request)
    except ClientError as problem:
        return problem.response()
    except web.HTTPException as problem:
        if problem.status < 400:
            raise
        body = openai_error_body(problem.reason, "invalid_request_error", f"http_{problem.status}")
        return error_response(problem.status, body)
    except Exception:
        _log.exception("gateway bug while serving %s %s", request.method, request.path)
        body = openai_error_body("The gateway failed unexpectedly.", "server_error", "internal")
        return error_response(500, body)


def create_app(
    policy: Policy,
    *,
    resolver: AbstractResolver | None = None,
    rng: Random | None = None,
    trace: TraceRecorder | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    fingerprints: PromptFingerprints | None = None,
) -> web.Application:
    """The gateway for `policy`.

    `resolver` replaces DNS for upstream connections (the chaos harness injects one);
    `trace` collects the engine's attempt and request rows; `fingerprints` notes each
    request body's keyed fingerprint for the audit log.
    """
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")

    def build(policy: Policy) -> tuple[Driver, Pools]:
        """Everything one policy needs; also what a reload validates a new policy with."""
        pools = Pools(policy.deployments, resolver=resolver)
        return Driver(policy, pools, rng=rng, trace=trace), pools

    drivers = Drivers(build, policy)
    app = web.Application(client_max_size=max_body_bytes, middlewares=[openai_errors])
    app[DRIVERS] = drivers
    metrics = app[METRICS] = Metrics(drivers.driver)
    drivers.on_swap(metrics.follow)
    app[_READY] = []
    if fingerprints is not None:
        app[_FINGERPRINTS] = fingerprints

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        drivers.open()
        app[_READY].append(True)
        yield
        app[_READY].clear()
        await drivers.close()

    async def draining(app: web.Application) -> None:
        app[_READY].clear()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(draining)
    app.add_routes(
        [
            web.post("/v1/chat/completions", chat_completions),
            web.get("/v1/models", list_models),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics.handler),
            *anthropic_routes(drivers, metrics, fingerprints=fingerprints),
        ]
    )
    return app
