"""A whole fake world: one listener per provider host, the shared edges, the control API.

`blastradius fakes --world FILE` starts one of these. The world file is a scenario (its
policy's deployments, its world settings and its fault timeline, replayed in real time,
`--speedup` compressing the timeline) or a bare policy (deployments only, no timeline).
Each distinct provider host of the policy's `base_url`s gets its own listener speaking that
host's wire protocol; hosts behind an `edge:` domain are also fronted by that edge's proxy,
and the router should talk to the edge's address, as it would in production.

The ready file says where everything is, so the harness (or a person) can point a router
at the fakes: per deployment the base URL to use, per host its listener, the control URL.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from fakes.model import ProviderModel
from fakes.server.chaos import ChaosRegistry
from fakes.server.control import control_app
from fakes.server.edge import EdgeProxy, edge_faults
from fakes.server.journal import Journal
from fakes.server.provider import Listing, ProviderServer
from fakes.server.wire import Wire
from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import Deployment, Policy
from scenarios.faults import AnyFault, Dns, level_at
from scenarios.policy_files import load_policy
from scenarios.scenario_files import is_scenario_data, load_scenario
from scenarios.schema import Scenario
from scenarios.yaml_source import read_yaml

__all__ = ["WIRES", "FakeWorld", "load_world", "wire_for"]

WIRES: dict[str, str] = {
    "openai": "fakes.server.openai_wire:OpenAIWire",
    "azure-openai": "fakes.server.azure_wire:AzureWire",
    "anthropic": "fakes.server.anthropic_wire:AnthropicWire",
    "gemini": "fakes.server.gemini_wire:GeminiWire",
    "bedrock": "fakes.server.bedrock_wire:BedrockWire",
    "mistral": "fakes.server.mistral_wire:MistralWire",
}
"""Each protocol's wire module, imported when a world first needs it."""


def wire_for(protocol: str) -> Wire:
    """A fresh wire for `protocol`."""
    module, _, name = WIRES[protocol].partition(":")
    cls = getattr(importlib.import_module(module), name)
    wire: Wire = cls()
    return wire


def load_world(path: str | Path) -> tuple[Policy, Scenario | None]:
    """A world file: a scenario (with its policy) or a bare policy; ConfigError names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            [_issue(str(path), "", "no such world file (a scenario or a policy YAML)")]
        )
    if is_scenario_data(read_yaml(path).data):
        loaded = load_scenario(path)
        return loaded.policy, loaded.scenario
    return load_policy(path), None


def _issue(file: str, field: str, message: str) -> ConfigIssue:
    return ConfigIssue(file=file, line=None, field=field, message=message)


def _host_key(deployment: Deployment) -> str:
    return urlsplit(deployment.base_url).netloc or deployment.base_url


@dataclass(slots=True)
class _Host:
    """One provider host: its protocol, deployments, listener and (optionally) its edge."""

    key: str
    protocol: str
    deployments: list[Deployment]
    edge: str | None = None
    port: int = 0
    edge_port: int = 0
    runner: web.AppRunner | None = None
    site: web.TCPSite | None = None
    refused: bool = False
    server: ProviderServer | None = field(default=None)


def _port_of(site: web.TCPSite) -> int:
    """The port a site bound (it asked for 0: any free port)."""
    server: Any = site._server
    return int(server.sockets[0].getsockname()[1])


class FakeWorld:
    """Starts and stops every listener of a world, and answers the control API's questions."""

    def __init__(
        self,
        policy: Policy,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speedup: float = 1.0,
        seed: int | None = None,
        journal_path: str | Path | None = None,
    ) -> None:
        if speedup <= 0:
            raise ConfigError([_issue("--speedup", "", f"must be positive, got {speedup}")])
        self.policy = policy
        self.scenario = scenario
        self.bind = host
        self.control_port = port
        self.speedup = speedup
        self.seed = scenario.seed if seed is None and scenario is not None else (seed or 1)
        self.chaos = ChaosRegistry()
        self.journal = Journal(journal_path)
        self._rng = Random(self.seed)
        self._t0 = 0.0
        self._faults: tuple[AnyFault, ...] = () if scenario is None else scenario.faults
        self._hosts: dict[str, _Host] = {}
        self._edges: dict[str, EdgeProxy] = {}
        self._runners: list[web.AppRunner] = []
        self._control_url = ""
        for deployment in policy.deployments:
            key = _host_key(deployment)
            entry = self._hosts.get(key)
            if entry is None:
                entry = self._hosts[key] = _Host(key, deployment.protocol, [])
            elif entry.protocol != deployment.protocol:
                message = f"host {key} already speaks {entry.protocol}, not {deployment.protocol}"
                raise ConfigError(
                    [_issue(policy.name, f"deployments.{deployment.id}.base_url", message)]
                )
            entry.deployments.append(deployment)
            edge = next((d for d in self._domains(deployment) if d.startswith("edge:")), None)
            if edge is not None:
                entry.edge = edge

    def _domains(self, deployment: Deployment) -> frozenset[str]:
        hidden: tuple[str, ...] = ()
        if self.scenario is not None:
            hidden = self.scenario.world.for_deployment(deployment.id).hidden_domains
        return frozenset(deployment.domains) | frozenset(hidden)

    def zero_clock(self) -> None:
        """Make now scenario time 0: a live run calls this when its traffic starts, so the
        fault timeline and the arrivals share one origin."""
        self._t0 = asyncio.get_running_loop().time()

    def clock(self) -> float:
        """Scenario seconds since the world started (real seconds × speedup)."""
        return (asyncio.get_running_loop().time() - self._t0) * self.speedup

    async def _listen(
        self, app: web.Application, port: int = 0
    ) -> tuple[web.AppRunner, web.TCPSite, int]:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.bind, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        return runner, site, _port_of(site)

    async def start(self) -> dict[str, Any]:
        """Open every listener; return the ready document (also what `--ready-file` holds)."""
        self._t0 = asyncio.get_running_loop().time()
        model_faults = [f for f in self._faults if not isinstance(f, Dns)]
        edge_owned = {id(f) for _, f in edge_faults(self._faults)}
        model_faults = [f for f in model_faults if id(f) not in edge_owned]
        for entry in self._hosts.values():
            listings: dict[str, Listing] = {}
            for deployment in entry.deployments:
                model = None
                if self.scenario is not None:
                    world = self.scenario.world.for_deployment(deployment.id)
                    model = ProviderModel(deployment, world, model_faults, seed=self.seed)
                listing = Listing(deployment, model, self._domains(deployment))
                listings[deployment.model] = listing
                listings.setdefault(deployment.id, listing)
            server = ProviderServer(
                entry.key, listings, chaos=self.chaos, journal=self.journal, clock=self.clock,
                rng=self._rng,
            )  # fmt: skip
            entry.server = server
            wire = wire_for(entry.protocol)
            app = web.Application(
                client_max_size=64 * 1024 * 1024,
                middlewares=[server.journal_refusals(wire.protocol)],
            )
            app.add_routes(wire.routes(server, server.models))
            entry.runner, entry.site, entry.port = await self._listen(app)
        for entry in self._hosts.values():
            if entry.edge is None:
                continue
            proxy = self._edges.get(entry.edge)
            if proxy is None:
                proxy = self._edges[entry.edge] = EdgeProxy(
                    entry.edge, chaos=self.chaos, faults=edge_faults(self._faults),
                    clock=self.clock, seed=self.seed, rng=self._rng,
                )  # fmt: skip
            upstream = f"http://{self.bind}:{entry.port}"
            _, _, entry.edge_port = await self._listen(proxy.app(entry.key, upstream))
        control = control_app(
            self.chaos, self.journal, dns_check=self.dns_failure, describe=self.describe,
            on_change=self._apply_refusals,
        )  # fmt: skip
        _, _, port = await self._listen(control, self.control_port)
        self._control_url = f"http://{self.bind}:{port}"
        return self.describe()

    async def _apply_refusals(self) -> None:
        """Close the listeners of hosts a `refuse` rule covers; reopen them when it goes.

        A closed listener is a real ECONNREFUSED, which no in-band answer can imitate.
        """
        refusing = [r for r in self.chaos.rules() if r.spec.kind == "refuse"]
        for entry in self._hosts.values():
            hit = any(
                rule.matches(d.id, self._domains(d), entry.key)
                for rule in refusing
                for d in entry.deployments
            )
            if hit and not entry.refused and entry.site is not None:
                await entry.site.stop()
                entry.refused = True
            elif not hit and entry.refused and entry.runner is not None:
                entry.site = web.TCPSite(entry.runner, self.bind, entry.port, reuse_address=True)
                await entry.site.start()
                entry.refused = False

    def dns_failure(self, name: str) -> str | None:
        """Why `name` does not resolve now, or None when it does.

        A name is a provider host (`api.openai.com`, with or without port); it fails while a
        `dns` rule or a scenario DNS fault covers it or a deployment behind it. Unknown names
        fail too: the harness only resolves its own world.
        """
        entry = next(
            (e for e in self._hosts.values() if name in (e.key, e.key.split(":")[0])), None
        )
        if entry is None:
            return f"{name}: Name or service not known"
        members = [(d.id, self._domains(d)) for d in entry.deployments]
        if self.chaos.dns_fails(members, entry.key, self._rng):
            return f"{name}: Temporary failure in name resolution"
        now = self.clock()
        for index, fault in enumerate(self._faults):
            if not isinstance(fault, Dns):
                continue
            for deployment_id, domains in members:
                target = fault.target
                if deployment_id not in target.deployments and domains.isdisjoint(target.domains):
                    continue
                level = level_at(
                    fault, now, member=deployment_id, seed=self.seed, fault_index=index,
                    domains=domains,
                )  # fmt: skip
                if level >= 1.0 or (level > 0.0 and self._rng.random() < level):
                    return f"{name}: Temporary failure in name resolution"
        return None

    def base_url(self, deployment: Deployment, *, by_name: bool = False) -> str:
        """Where a router should send this deployment's traffic: its edge if it has one.

        `by_name` keeps the vendor's host name (with the listener's port), for routers that
        resolve through `ControlledResolver` so DNS faults reach them.
        """
        entry = self._hosts[_host_key(deployment)]
        port = entry.edge_port or entry.port
        parts = urlsplit(deployment.base_url)
        name = (parts.hostname or self.bind) if by_name else self.bind
        return urlunsplit(("http", f"{name}:{port}", parts.path, parts.query, ""))

    def describe(self) -> dict[str, Any]:
        """The ready document: control URL, hosts, per-deployment base URLs, clock."""
        return {
            "control": self._control_url,
            "pid": os.getpid(),
            "scenario": None if self.scenario is None else self.scenario.id,
            "policy": self.policy.name,
            "speedup": self.speedup,
            "clock_s": round(self.clock(), 3) if self._t0 else 0.0,
            "hosts": {
                entry.key: {
                    "protocol": entry.protocol,
                    "url": f"http://{self.bind}:{entry.port}",
                    "edge": entry.edge,
                    "edge_url": f"http://{self.bind}:{entry.edge_port}"
                    if entry.edge_port
                    else None,
                    "deployments": [d.id for d in entry.deployments],
                }
                for entry in self._hosts.values()
            },
            "deployments": {
                d.id: {"base_url": self.base_url(d), "by_name": self.base_url(d, by_name=True)}
                for d in self.policy.deployments
            },
        }

    async def stop(self) -> None:
        """Close every listener, the edges' pools and the journal."""
        for proxy in self._edges.values():
            await proxy.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        self.journal.close()


def write_ready(path: str | Path, document: dict[str, Any]) -> None:
    """Write the ready file atomically, so a watcher never reads half of it."""
    target = Path(path)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)


def group_by_protocol(policy: Policy) -> dict[str, list[str]]:
    """Deployment ids per protocol, for the start-up summary."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for deployment in policy.deployments:
        grouped[deployment.protocol].append(deployment.id)
    return dict(grouped)


async def serve_world(world: FakeWorld, ready_file: str | Path | None, stop: asyncio.Event) -> None:
    """Run a world until `stop` is set; write the ready file once everything listens."""
    document = await world.start()
    try:
        if ready_file is not None:
            write_ready(ready_file, document)
        await stop.wait()
    finally:
        await world.stop()
