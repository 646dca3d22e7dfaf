"""Locust load test of the blastradius gateway (or any OpenAI-compatible endpoint).

Run against a gateway serving a policy (for chaos, one pointed at `blastradius fakes`):

    locust -f locustfile.py --host http://127.0.0.1:8080 --headless -u 50 -r 10 -t 2m \
        --route default --stream-share 0.5 --csv runs/load

Each simulated user sends chat completions to one route, streamed with probability
`--stream-share`. A response counts as a failure when it is not a *complete* answer:
a non-200 status, a JSON body without choices, or a stream with an error event, no
finish reason or no `[DONE]` — so a gateway that presents a truncated stream as success
shows up in Locust's failure table, not in its success rate. Distributed runs use
Locust's own `--master` / `--worker` mode.
"""

from __future__ import annotations

import json
import random
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.argument_parser import LocustArgumentParser

from tests.load.answers import complete_stream

_WORDS = ("route", "breaker", "domain", "budget", "edge", "replica", "quorum", "ledger")


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument("--route", default="default", help="route name sent as `model`")
    parser.add_argument("--api-key", default="", help="tenant key (Authorization: Bearer)")
    parser.add_argument("--stream-share", type=float, default=0.5, help="share of streamed calls")
    parser.add_argument("--prompt-words", type=int, default=60, help="prompt size in words")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens per call")


class ChatUser(FastHttpUser):
    """One client of the gateway, calling one route in a closed loop with a little think time."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.route: str = getattr(options, "route", "default")
        self.stream_share: float = getattr(options, "stream_share", 0.5)
        self.words: int = getattr(options, "prompt_words", 60)
        self.max_tokens: int = getattr(options, "max_tokens", 64)
        key = getattr(options, "api_key", "")
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def _body(self, stream: bool) -> dict[str, Any]:
        prompt = " ".join(random.choice(_WORDS) for _ in range(self.words))
        body: dict[str, Any] = {
            "model": self.route,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    @task
    def chat(self) -> None:
        """One chat completion, streamed or not; failures are incomplete answers."""
        stream = random.random() < self.stream_share
        name = f"{self.route} ({'stream' if stream else 'json'})"
        with self.client.post(
            "/v1/chat/completions",
            json=self._body(stream),
            headers=self.headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif stream:
                problem = complete_stream(response.text or "")
                if problem is not None:
                    response.failure(problem)
            else:
                try:
                    choices = json.loads(response.text or "{}").get("choices")
                except json.JSONDecodeError:
                    choices = None
                if not choices:
                    response.failure("no choices in the answer")
