"""Retry-After in every form vendors send it, parsed to seconds.

Forms, in the order they are trusted: `retry-after-ms` (OpenAI, milliseconds);
`retry-after` as delta-seconds or an HTTP date (RFC 9110); Anthropic's
`anthropic-ratelimit-*-reset` RFC 3339 instants; Google's `RetryInfo.retryDelay`
(`"3s"`) in the body; and OpenAI's "Please try again in 1.5s" message text. The
engine needs one number — how long to keep off this deployment — so the parse is
here, at the edge, and the core never sees a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["retry_after_s"]

_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_RESET_HEADERS = ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _http_date(text: str, now_epoch: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_epoch)


def _rfc3339(text: str, now_epoch: float) -> float | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_epoch)


def _from_body(body: Any) -> float | None:
    """Google's `error.details[].retryDelay`, or an OpenAI "try again in" message."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
            match = _DELAY.match(delay) if isinstance(delay, str) else None
            if match:
                return float(match.group(1))
    message = error.get("message")
    if isinstance(message, str) and (match := _TRY_AGAIN.search(message)):
        value = float(match.group(1))
        return value / 1000 if match.group(2).lower() == "ms" else value
    return None


def retry_after_s(headers: Mapping[str, str], body: Any, *, now_epoch: float) -> float | None:
    """Seconds the vendor asks us to wait, or None when it says nothing.

    `headers` must be case-insensitive (aiohttp's `CIMultiDictProxy` is); `now_epoch`
    (Unix seconds) turns dates and instants into waits.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None and (value := _number(millis)) is not None:
        return value / 1000
    after = headers.get("retry-after")
    if after is not None:
        value = _number(after)
        if value is None:
            value = _http_date(after, now_epoch)
        if value is not None:
            return value
    from_body = _from_body(body)
    if from_body is not None:
        return from_body
    resets = [
        wait
        for name in _RESET_HEADERS
        if (text := headers.get(name)) is not None
        and (wait := _rfc3339(text, now_epoch)) is not None
    ]
    return min(resets) if resets else None
