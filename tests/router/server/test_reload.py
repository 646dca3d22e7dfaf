"""Policy reload on SIGHUP, against a real `blastradius serve` process.

One run proves the whole contract: a slow stream started under the old policy
finishes intact after a reload that *removes its route* (it stayed on the old
engine); new requests see the new policy (a new route in /v1/models that answers,
the removed one 404s); counters carry over in /metrics; an invalid file — a schema
error, and a setting the gateway cannot serve — is refused with file, line and field
in the log while the last good policy keeps serving; SIGTERM still exits 0.
"""

from __future__ import annotations

import signal
import threading
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from fakes.server.world import FakeWorld
from tests.fakes.server.harness import running_world
from tests.router.server.gateway import call_json, load_policy, wait_for
from tests.router.server.serving import policy_data, serve_process, write_policy

PING = [{"role": "user", "content": "ping"}]


def _routes(url: str) -> set[str]:
    return {card["id"] for card in call_json("GET", url + "/v1/models")[1]["data"]}


def test_sighup_swaps_policy_while_a_stream_in_flight_completes(tmp_path: Path) -> None:
    with running_world(FakeWorld(load_policy(), seed=5)) as ready:
        before = policy_data(ready, slow_token_s=0.15)
        policy = write_policy(tmp_path / "policy.yaml", before)
        with serve_process(policy) as served:
            client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
            assert _routes(served.url) == {"default", "solo", "slow"}
            stream = client.chat.completions.create(model="slow", messages=PING, stream=True)  # type: ignore[arg-type]
            chunks: list[Any] = [next(iter(stream))]
            finished = threading.Event()

            def drain() -> None:
                chunks.extend(stream)
                finished.set()

            reader = threading.Thread(target=drain)
            reader.start()
            try:
                after = policy_data(ready)  # no `slow` route any more
                after["routes"].append({"name": "extra", "targets": ["claude@anthropic"]})
                write_policy(policy, after)
                served.process.send_signal(signal.SIGHUP)
                wait_for(lambda: "extra" in _routes(served.url))
                assert not finished.is_set(), "the stream ended before the reload; slow it down"
                assert _routes(served.url) == {"default", "solo", "extra"}
                answer = client.chat.completions.create(model="extra", messages=PING)  # type: ignore[arg-type]
                assert answer.model == "claude-sonnet-4-5"
                with pytest.raises(openai.NotFoundError):
                    client.chat.completions.create(model="slow", messages=PING)  # type: ignore[arg-type]
            finally:
                reader.join(15)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert len(text.split()) == 12
            assert chunks[-1].choices[0].finish_reason == "stop"
            served.wait_for_line(lambda line: "reloaded" in line and "extra" in line)
            metrics = call_json_text(served.url + "/metrics")
            assert 'blastradius_gateway_requests_total{final="ok",route="slow"} 1.0' in metrics

            # A schema error: refused with file, line and field; the last good policy stays.
            broken = policy.read_text().replace("connect_s: 1", "connect_s: soon")
            policy.write_text(broken, encoding="utf-8")
            served.process.send_signal(signal.SIGHUP)
            refused = served.wait_for_line(lambda line: "reload refused" in line)
            assert f"{policy}:" in refused and "connect_s" in refused, refused
            assert _routes(served.url) == {"default", "solo", "extra"}
            # Fixed again, now continuing broken answers on a fallback: served.
            after["resilience"]["streaming"] = {"after_first_byte": "continue"}
            write_policy(policy, after)
            served.process.send_signal(signal.SIGHUP)
            served.wait_for_line(lambda line: "reloaded" in line and "extra" in line)
            assert client.chat.completions.create(model="extra", messages=PING).choices  # type: ignore[arg-type]
            client.close()
            served.process.terminate()
            assert served.process.wait(15) == 0


def call_json_text(url: str) -> str:
    """A GET whose body is text (Prometheus exposition)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())
