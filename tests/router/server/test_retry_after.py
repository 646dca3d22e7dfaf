"""Retry-After in each vendor's form."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from router.server.retry_after import retry_after_s

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after-ms": "300", "retry-after": "1"}, None, 0.3),
        ({"Retry-After": "7"}, None, 7.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, None, 10.0),
        ({"anthropic-ratelimit-requests-reset": "2023-11-14T22:13:25Z"}, None, 5.0),
        ({}, {"error": {"details": [{"retryDelay": "3s"}]}}, 3.0),
        ({}, {"error": {"message": "Please try again in 1.5s. Visit ..."}}, 1.5),
        ({}, {"error": {"message": "Please try again in 20ms."}}, 0.02),
        ({"retry-after": "soon"}, None, None),
        ({}, {"error": "flat"}, None),
        ({}, None, None),
    ],
)
def test_every_vendor_form(headers: dict[str, str], body: Any, expected: float | None) -> None:
    got = retry_after_s(CIMultiDict(headers), body, now_epoch=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)
