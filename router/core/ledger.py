"""The spend ledger: every billed attempt, failed ones included.

Providers bill tokens they processed even when the answer never reached the
client (an interrupted stream is billed), so the ledger is charged per attempt,
not per answer. Tenant spend caps read rolling sums from it. A slice leaves the
rolling window only once its end has, so a cap check never undercounts.
"""

from __future__ import annotations

from router.core.window import SlicedWindow

__all__ = ["SpendLedger"]


class SpendLedger:
    """Totals per tenant and per deployment, plus rolling tenant spend for caps."""

    __slots__ = (
        "_reserved",
        "_rolling",
        "_window_s",
        "by_deployment",
        "by_tenant",
        "entries",
        "total_usd",
    )

    def __init__(self, *, window_s: dict[str, float] | None = None) -> None:
        self._window_s = dict(window_s or {})
        for tenant, span in self._window_s.items():
            if not span > 0:  # NaN included; checked here, not at the first charge
                raise ValueError(f"spend window for tenant {tenant!r} must be > 0 s, got {span}")
        self._rolling: dict[str, SlicedWindow] = {}
        self._reserved: dict[str, float] = {}
        self.total_usd = 0.0
        self.entries = 0
        self.by_tenant: dict[str, float] = {}
        self.by_deployment: dict[str, float] = {}

    def record(self, now: float, tenant: str, deployment: str, cost_usd: float) -> None:
        """Charge one attempt (zero-cost attempts count as entries too)."""
        if not cost_usd >= 0:  # NaN would poison every total and cap check
            raise ValueError(f"attempt cost must be ≥ 0, got {cost_usd}")
        self.entries += 1
        self.total_usd += cost_usd
        self.by_tenant[tenant] = self.by_tenant.get(tenant, 0.0) + cost_usd
        self.by_deployment[deployment] = self.by_deployment.get(deployment, 0.0) + cost_usd
        span = self._window_s.get(tenant)
        if span is not None and cost_usd:
            window = self._rolling.get(tenant)
            if window is None:
                window = self._rolling[tenant] = SlicedWindow(span, slices=48)
            window.add(now, 0, cost_usd)

    def spent(self, now: float, tenant: str) -> float:
        """The tenant's spend over its cap window (all-time when it has no window)."""
        window = self._rolling.get(tenant)
        if window is not None:
            return window.totals(now)[0]
        if tenant in self._window_s:
            return 0.0
        return self.by_tenant.get(tenant, 0.0)

    def reserve(self, tenant: str, amount_usd: float) -> None:
        """Hold the estimated cost of an attempt in flight, so concurrent ones see it."""
        self._reserved[tenant] = self._reserved.get(tenant, 0.0) + amount_usd

    def release(self, tenant: str, amount_usd: float) -> None:
        """Drop a hold once the attempt is billed (or abandoned)."""
        left = self._reserved.get(tenant, 0.0) - amount_usd
        self._reserved[tenant] = left if left > 1e-12 else 0.0

    def committed(self, now: float, tenant: str) -> float:
        """Spend in the cap window plus holds for attempts still in flight."""
        return self.spent(now, tenant) + self._reserved.get(tenant, 0.0)
