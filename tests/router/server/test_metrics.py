"""`/metrics`: requests, attempts, reasons, breaker states, budget and spend after a failover."""

from __future__ import annotations

import contextlib
import urllib.request

import openai

from tests.router.server.gateway import gateway

PING = [{"role": "user", "content": "ping"}]


def scrape(url: str) -> dict[str, float]:
    """Sample lines as {"name{labels}": value}."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_count_a_failover_and_its_bill() -> None:
    with gateway(models={"gpt@openai": "gpt-4o~server"}) as gw:
        gw.client.chat.completions.create(model="default", messages=PING)
        samples = scrape(gw.url)
        prefix = "blastradius_gateway"
        assert samples[f'{prefix}_requests_total{{final="ok",route="default"}}'] == 1
        assert samples[f'{prefix}_attempts_total{{deployment="gpt@openai",outcome="server"}}'] == 3
        ok = f'{prefix}_attempts_total{{deployment="claude@anthropic",outcome="ok"}}'
        assert samples[ok] == 1
        assert samples[f'{prefix}_reasons_total{{reason="failover"}}'] == 1
        assert samples[f'{prefix}_breaker_state{{deployment="gpt@openai"}}'] == 0
        assert samples[f'{prefix}_spend_usd_total{{tenant="anonymous"}}'] > 0
        assert samples[f"{prefix}_requests_in_flight"] == 0
        assert f"{prefix}_retry_budget_balance" in samples
        assert samples[f'{prefix}_request_seconds_count{{route="default"}}'] == 1


def test_unknown_routes_share_one_latency_series() -> None:
    with gateway() as gw:
        for typo in ("defualt", "gpt-4o", "nope"):
            with contextlib.suppress(openai.NotFoundError):
                gw.client.chat.completions.create(model=typo, messages=PING)
        samples = scrape(gw.url)
    series = [
        name for name in samples if name.startswith("blastradius_gateway_request_seconds_count")
    ]
    assert series == ['blastradius_gateway_request_seconds_count{route="(unknown)"}']
    assert samples[series[0]] == 3
