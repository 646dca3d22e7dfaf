"""`Adapter.continued`: the body that asks a fallback to carry on a broken answer."""

from __future__ import annotations

from typing import Any

import pytest

from router.server.adapters import adapter_for

ASKED = [{"role": "user", "content": "ping"}]
PREFILL = {"role": "assistant", "content": "Hello there"}


@pytest.mark.parametrize(
    ("body", "said", "delivered", "expected"),
    [
        ({"messages": ASKED}, "Hello there", 2, {"messages": [*ASKED, PREFILL]}),
        ({"messages": ASKED}, "Hello there \n", 2, {"messages": [*ASKED, PREFILL]}),
        ({"messages": ASKED}, "  ", 1, {"messages": ASKED}),  # nothing to carry on from
        (
            {"messages": ASKED, "max_tokens": 100},
            "Hello there",
            30,
            {"messages": [*ASKED, PREFILL], "max_tokens": 70},
        ),
        (
            {"messages": ASKED, "max_completion_tokens": 10},
            "Hello there",
            30,
            {"messages": [*ASKED, PREFILL], "max_completion_tokens": 1},
        ),
    ],
)
def test_the_client_body_ends_with_what_it_has(
    body: dict[str, Any], said: str, delivered: int, expected: dict[str, Any]
) -> None:
    assert adapter_for("openai").continued(body, said, delivered) == expected
    assert body["messages"] == ASKED  # the client's own body is left as it was


def test_mistral_marks_the_prefill_as_a_prefix() -> None:
    body = adapter_for("mistral").continued({"messages": ASKED}, "Hello there", 2)
    assert body["messages"][-1] == {**PREFILL, "prefix": True}
