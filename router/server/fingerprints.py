"""Prompt fingerprints for the audit log: which request was it, without keeping the prompt.

An auditor tracing an incident wants to tie a row of the audit log to a request the
client recorded, and the log must never hold a prompt. A fingerprint does both: the
HMAC-SHA256 of the client's JSON body, canonical (keys sorted, no whitespace, UTF-8),
under a key the operator holds. It is keyed because a plain hash of a short prompt is
reversed by guessing ("hi"); with the key, only its holder can check that a given body
is the one logged (`PromptFingerprints.of`), and the log alone says nothing about it.

The handlers note each request's fingerprint under its request id; the audit log looks
it up when it writes that request's row (`prompt_hmac`) and forgets it once written.
Ids repeat when a client retries with the same `x-request-id` (never while the first is
in flight), so each id keeps its fingerprints in arrival order, and rows, written in
the order requests end, take them in that order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from typing import Any

import orjson

__all__ = ["PromptFingerprints"]


class PromptFingerprints:
    """Fingerprints of request bodies under one secret key, held until their row is written."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the prompt fingerprint key must not be empty")
        self._key = key
        self._pending: dict[str, deque[str]] = {}

    def of(self, body: Any) -> str:
        """The hex HMAC-SHA256 of `body` as canonical JSON."""
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def note(self, request_id: str, body: Any) -> None:
        """Keep the fingerprint of a request that has just been opened."""
        self._pending.setdefault(request_id, deque()).append(self.of(body))

    def lookup(self, request_ids: list[str]) -> list[str | None]:
        """The fingerprints of requests whose rows are about to be written, in row order
        (a repeated id takes its next one); kept until `forget` says they were written."""
        seen: dict[str, int] = {}
        found: list[str | None] = []
        for request_id in request_ids:
            index = seen.get(request_id, 0)
            seen[request_id] = index + 1
            pending = self._pending.get(request_id)
            found.append(pending[index] if pending and index < len(pending) else None)
        return found

    def forget(self, request_ids: list[str]) -> None:
        """The rows of `request_ids` were written with their fingerprints: drop those."""
        for request_id in request_ids:
            pending = self._pending.get(request_id)
            if pending:
                pending.popleft()
                if not pending:
                    del self._pending[request_id]

    def __len__(self) -> int:
        """Fingerprints still waiting for their request's row."""
        return sum(len(pending) for pending in self._pending.values())
