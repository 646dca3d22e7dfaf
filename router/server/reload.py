"""Policy reload without dropping a request: the driver new requests go to, and retirees.

A reload builds a complete new driver (engine, adapters, pools) for the new policy
*before* anything changes, so an invalid policy (a protocol with no adapter, an
unsupported setting) raises and the old driver keeps serving. Then new requests go
to the new driver while the old one keeps carrying its in-flight calls — their
retries, timers and streams — on the old engine and pools; once it has none left it
is stopped and its pools closed.

Engine time runs on across a reload (the new driver starts at its predecessor's
clock offset), and what must not reset on a config change is handed over when the
setting behind it is unchanged: the counters `/metrics` exports, the reason tally,
the tenants' spend ledger (else a reload would reset spend caps), the retry budget
and the breakers of unchanged deployments (else a reload would send a burst at a
deployment known to be down). A proper `Engine` hand-over belongs in `router.core`;
until it has one, this module moves those public pieces across.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from router.core.policy import Policy
from router.server.driver import Driver
from router.server.pools import Pools

__all__ = ["Build", "Drivers"]

Build = Callable[[Policy], tuple[Driver, Pools]]
"""Everything derived from a policy; raises ValueError if the gateway cannot serve it."""

_log = logging.getLogger(__name__)

_RETIRE_POLL_S = 0.05


class Drivers:
    """The current driver of a gateway, swapped by `reload`; old ones drain, then close."""

    def __init__(self, build: Build, policy: Policy) -> None:
        self._build = build
        self.driver, self._pools = build(policy)
        self._retiring: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[Driver], None]] = []
        self.reloads = 0

    @property
    def policy(self) -> Policy:
        """The policy new requests are served under."""
        return self.driver.policy

    def on_swap(self, listener: Callable[[Driver], None]) -> None:
        """Call `listener(new_driver)` after every reload (metrics follow the new driver)."""
        self._listeners.append(listener)

    def open(self) -> None:
        """Open the first driver's pools and start its clock (in the running loop)."""
        self._pools.open()
        self.driver.start()

    def reload(self, policy: Policy) -> Driver:
        """Serve new requests under `policy`; ValueError (nothing changed) if it cannot be."""
        driver, pools = self._build(policy)
        old, old_pools = self.driver, self._pools
        pools.open()
        driver.start(offset=old.offset)
        _hand_over(old, driver)
        self.driver, self._pools = driver, pools
        self.reloads += 1
        for listener in self._listeners:
            listener(driver)
        task = asyncio.get_running_loop().create_task(
            _retire(old, old_pools), name=f"retire-driver-{self.reloads}"
        )
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return driver

    async def close(self) -> None:
        """Stop every driver and close every pool (the server has stopped taking requests)."""
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.driver.stop()
        await self._pools.close()


async def _retire(driver: Driver, pools: Pools) -> None:
    """Wait until `driver` has answered its last call, then stop it and close its pools."""
    try:
        while driver.in_flight:
            await asyncio.sleep(_RETIRE_POLL_S)
    finally:  # on cancel (shutdown) too: nothing may outlive the gateway
        await driver.stop()
        await pools.close()
        _log.info("previous policy %r retired", driver.policy.name)


def _cap_windows(policy: Policy) -> dict[str, float]:
    return {
        name: tenant.spend.window_s
        for name, tenant in policy.tenants.items()
        if tenant.spend is not None
    }


def _hand_over(old: Driver, new: Driver) -> None:
    """Move the state that must survive a config change from `old` to `new` (see above)."""
    new.attempt_counts = old.attempt_counts
    new.request_counts = old.request_counts
    new.spend_usd = old.spend_usd
    engine, before = new.engine, old.engine
    engine.reasons = before.reasons
    if _cap_windows(new.policy) == _cap_windows(old.policy):
        engine.ledger = before.ledger
    else:
        _log.warning("tenant spend windows changed: spend caps count from zero")
    if new.policy.resilience.budget == old.policy.resilience.budget:
        engine.budget = before.budget
    if new.policy.resilience.breaker == old.policy.resilience.breaker:
        previous = {d.id: d for d in old.policy.deployments}
        index_of = {c.id: c.index for c in before.candidates}
        for candidate in engine.candidates:
            if previous.get(candidate.id) == new.policy.deployments[candidate.index]:
                engine.breakers[candidate.index] = before.breakers[index_of[candidate.id]]
