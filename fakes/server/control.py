"""The chaos control API: JSON over HTTP to set faults, read the journal and resolve names.

Modelled on Toxiproxy's: a test or an operator lists, adds, removes and resets faults
per deployment, failure domain or host while traffic flows, and reads back what the
providers saw. Endpoints:

- `GET /faults`, `POST /faults` (a rule: kind, target, probability, parameters),
  `DELETE /faults/{id}`, `POST /reset` (drop every rule; `?journal=1` also clears it)
- `GET /journal?since=SEQ` — attempts that reached a fake, oldest first
- `GET /dns/resolve?host=H` — what `ControlledResolver` asks before each new connection
- `GET /world` — deployments, hosts, base URLs and the scenario clock
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fakes.server.chaos import FAULT_KINDS, ChaosRegistry, spec_problems
from fakes.server.journal import Journal

__all__ = ["control_app"]

DnsCheck = Callable[[str], str | None]
"""Given a host name: None when it resolves, else the reason it does not."""


def _problem(status: int, message: str, problems: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=status)


def control_app(
    chaos: ChaosRegistry,
    journal: Journal,
    *,
    dns_check: DnsCheck,
    describe: Callable[[], dict[str, Any]],
    on_change: Callable[[], Awaitable[None]],
) -> web.Application:
    """The control application; `on_change` runs after every change to the rules."""

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [rule.as_json() for rule in chaos.rules()]})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.text())
        except json.JSONDecodeError as exc:
            return _problem(400, f"body is not JSON: {exc.msg} at line {exc.lineno}")
        spec, problems = spec_problems(data)
        if spec is None:
            kinds = ", ".join(FAULT_KINDS)
            return _problem(400, f"invalid fault rule (kinds: {kinds})", problems)
        rule = chaos.add(spec)
        await on_change()
        return web.json_response(rule.as_json(), status=201)

    async def remove_fault(request: web.Request) -> web.Response:
        rule_id = request.match_info["rule_id"]
        if not chaos.remove(rule_id):
            return _problem(404, f"no fault with id {rule_id!r}")
        await on_change()
        return web.json_response({"removed": rule_id})

    async def reset(request: web.Request) -> web.Response:
        removed = chaos.reset()
        if request.query.get("journal") in ("1", "true"):
            journal.clear()
        await on_change()
        return web.json_response({"removed": removed})

    async def read_journal(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _problem(400, "since: must be an integer sequence number")
        return web.json_response({"attempts": journal.entries(since=since)})

    async def resolve(request: web.Request) -> web.Response:
        host = request.query.get("host", "")
        if not host:
            return _problem(400, "host: query parameter required")
        failure = dns_check(host)
        if failure is not None:
            return _problem(503, failure)
        return web.json_response({"host": host, "addresses": ["127.0.0.1"]})

    async def world(request: web.Request) -> web.Response:
        return web.json_response(describe())

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes(
        [
            web.get("/faults", list_faults),
            web.post("/faults", add_fault),
            web.delete("/faults/{rule_id}", remove_fault),
            web.post("/reset", reset),
            web.get("/journal", read_journal),
            web.get("/dns/resolve", resolve),
            web.get("/world", world),
            web.get("/healthz", healthz),
        ]
    )
    return app
