"""The spend ledger: every billed attempt counted once, caps never undercounted.

Tenant caps read `spent`/`committed`; auditors read the totals. A stateful test
records random charges and holds and checks both against an exact log.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from router.core.ledger import SpendLedger


@pytest.mark.parametrize(
    ("window_s", "shown"),
    [
        ({"acme": 0.0}, "0.0"),
        ({"acme": -60.0}, "-60.0"),
        ({"ok": 60.0, "acme": math.nan}, "nan"),
    ],
)
def test_constructor_rejects_bad_windows_and_names_them(
    window_s: dict[str, float], shown: str
) -> None:
    with pytest.raises(ValueError, match="'acme'") as error:
        SpendLedger(window_s=window_s)
    assert shown in str(error.value)


@pytest.mark.parametrize("cost", [-0.01, -1e-12, math.nan])
def test_a_negative_or_missing_cost_is_refused_and_nothing_is_charged(cost: float) -> None:
    ledger = SpendLedger(window_s={"acme": 60.0})
    with pytest.raises(ValueError, match=str(cost)):
        ledger.record(1.0, tenant="acme", deployment="a", cost_usd=cost)
    assert ledger.entries == 0 and ledger.total_usd == 0.0
    assert ledger.spent(1.0, "acme") == 0.0


def test_totals_per_tenant_and_deployment() -> None:
    ledger = SpendLedger()
    ledger.record(0.0, tenant="acme", deployment="a", cost_usd=0.5)
    ledger.record(1.0, tenant="acme", deployment="b", cost_usd=0.25)
    ledger.record(2.0, tenant="zeta", deployment="a", cost_usd=1.0)
    ledger.record(3.0, tenant="zeta", deployment="a", cost_usd=0.0)  # a free attempt still counts
    assert ledger.entries == 4
    assert ledger.total_usd == 1.75
    assert ledger.by_tenant == {"acme": 0.75, "zeta": 1.0}
    assert ledger.by_deployment == {"a": 1.5, "b": 0.25}


@pytest.mark.parametrize(
    ("tenant", "now", "spent"),
    [
        ("capped", 50.0, 3.0),
        ("capped", 109.0, 2.0),  # the charge at 0 left with its slice (100 s, 48 slices)
        ("capped", 200.0, 0.0),
        ("open", 1e6, 30.0),  # no window: all-time spend
        ("idle", 50.0, 0.0),  # windowed tenant that never spent anything
        ("stranger", 50.0, 0.0),
    ],
)
def test_spent_is_rolling_for_windowed_tenants(tenant: str, now: float, spent: float) -> None:
    ledger = SpendLedger(window_s={"capped": 100.0, "idle": 100.0})
    for at, cost in ((0.0, 1.0), (40.0, 2.0)):
        ledger.record(at, tenant="capped", deployment="a", cost_usd=cost)
    ledger.record(40.0, tenant="open", deployment="a", cost_usd=30.0)
    assert ledger.spent(now, tenant) == pytest.approx(spent)


def test_holds_count_towards_committed_until_released() -> None:
    ledger = SpendLedger(window_s={"acme": 60.0})
    ledger.record(0.0, tenant="acme", deployment="a", cost_usd=1.0)
    ledger.reserve("acme", 0.5)
    ledger.reserve("acme", 0.25)
    assert ledger.committed(0.0, "acme") == 1.75
    ledger.release("acme", 0.5)
    assert ledger.committed(0.0, "acme") == 1.25
    ledger.release("acme", 0.3)  # more than is held: never negative
    assert ledger.committed(0.0, "acme") == 1.0
    assert ledger.committed(0.0, "other") == 0.0


# -- stateful ---------------------------------------------------------------------------

TENANTS = {"hourly": 100.0, "minutely": 10.0, "forever": None}
DEPLOYMENTS = ("a@one", "b@two", "c@three")
EPS = 1e-9


class LedgerMachine(RuleBasedStateMachine):
    """Random charges, holds and releases, checked against an exact log."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = SpendLedger(window_s={t: w for t, w in TENANTS.items() if w is not None})
        self.now = 0.0
        self.log: list[tuple[float, str, str, float]] = []
        self.held: dict[str, float] = dict.fromkeys(TENANTS, 0.0)

    @rule(step=st.floats(0.0, 20.0) | st.sampled_from([0.1, 0.3, 1.0, 9.9, 10.0, 99.0]))
    def advance(self, step: float) -> None:
        self.now += step

    @rule(
        tenant=st.sampled_from(sorted(TENANTS)),
        deployment=st.sampled_from(DEPLOYMENTS),
        cost=st.just(0.0) | st.floats(0.0, 5.0) | st.floats(1e-7, 1e-3),
    )
    def record(self, tenant: str, deployment: str, cost: float) -> None:
        self.ledger.record(self.now, tenant=tenant, deployment=deployment, cost_usd=cost)
        self.log.append((self.now, tenant, deployment, cost))

    @rule(tenant=st.sampled_from(sorted(TENANTS)), amount=st.floats(0.0, 2.0))
    def reserve(self, tenant: str, amount: float) -> None:
        self.ledger.reserve(tenant, amount)
        self.held[tenant] += amount

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        tenant = data.draw(st.sampled_from([t for t, h in self.held.items() if h]))
        amount = data.draw(st.floats(0.0, self.held[tenant] * 1.2))
        self.ledger.release(tenant, amount)
        left = self.held[tenant] - amount
        self.held[tenant] = left if left > 1e-12 else 0.0

    @invariant()
    def totals_agree(self) -> None:
        ledger = self.ledger
        exact = math.fsum(cost for *_, cost in self.log)
        assert ledger.entries == len(self.log)
        assert math.isclose(ledger.total_usd, exact, abs_tol=EPS)
        assert math.isclose(math.fsum(ledger.by_tenant.values()), exact, abs_tol=EPS)
        assert math.isclose(math.fsum(ledger.by_deployment.values()), exact, abs_tol=EPS)
        for tenant, total in ledger.by_tenant.items():
            expected = math.fsum(c for _, t, _, c in self.log if t == tenant)
            assert math.isclose(total, expected, abs_tol=EPS)

    @invariant()
    def rolling_spend_never_undercounts(self) -> None:
        """Exact sum over (now − span, now] ≤ spent ≤ exact sum over one more slice (48 slices)."""
        now = self.now
        for tenant, span in TENANTS.items():
            costs = [(at, c) for at, t, _, c in self.log if t == tenant]
            spent = self.ledger.spent(now, tenant)
            if span is None:
                assert math.isclose(spent, math.fsum(c for _, c in costs), abs_tol=EPS)
                continue
            inside = math.fsum(c for at, c in costs if at > now - span + EPS)
            one_more = math.fsum(c for at, c in costs if at > now - span - span / 48 - EPS)
            assert inside - EPS <= spent <= one_more + EPS, (tenant, inside, spent, one_more)

    @invariant()
    def committed_is_spent_plus_holds(self) -> None:
        for tenant, held in self.held.items():
            spent = self.ledger.spent(self.now, tenant)
            committed = self.ledger.committed(self.now, tenant)
            assert committed >= spent - EPS
            assert math.isclose(committed - spent, held, abs_tol=1e-6)


TestLedgerMachine = LedgerMachine.TestCase
