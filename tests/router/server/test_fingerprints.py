"""Prompt fingerprints: keyed, canonical, and handed to the rows they belong to, in order."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from router.server.fingerprints import PromptFingerprints

KEY = b"operator-secret"
BODY = {"model": "default", "messages": [{"role": "user", "content": "héllo"}], "seed": 3}


def test_a_fingerprint_is_the_hmac_of_the_canonical_body() -> None:
    canonical = json.dumps(BODY, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hmac.new(KEY, canonical.encode(), hashlib.sha256).hexdigest()
    assert PromptFingerprints(KEY).of(BODY) == expected
    reordered = dict(reversed(list(BODY.items())))
    assert PromptFingerprints(KEY).of(reordered) == expected  # key order is not the body
    assert PromptFingerprints(b"another key").of(BODY) != expected


def test_rows_take_their_own_fingerprints_even_when_a_client_reuses_an_id() -> None:
    prints = PromptFingerprints(KEY)
    prints.note("r1", {"n": 1})
    prints.note("r2", {"n": 2})
    prints.note("r1", {"n": 3})  # a client retry with the same x-request-id, later
    first, second, third = (prints.of({"n": n}) for n in (1, 2, 3))
    assert prints.lookup(["r2", "r1", "r1", "r9"]) == [second, first, third, None]
    assert len(prints) == 3  # looked up, not yet written
    prints.forget(["r2", "r1"])
    assert prints.lookup(["r1"]) == [third] and len(prints) == 1
    prints.forget(["r1"])
    assert len(prints) == 0


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        PromptFingerprints(b"")
