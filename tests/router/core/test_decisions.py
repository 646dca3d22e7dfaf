"""The status a client sees when the engine gives up (`status_for`), rule by rule.

A client's SDK decides from the status alone whether to retry and what went wrong, so
a vendor's status reaches it only where it means the same to the client as to us.
"""

from __future__ import annotations

import pytest

from router.core.decisions import REJECT_STATUS, status_for
from router.core.outcomes import Outcome
from router.core.reasons import Reason

OC, R = Outcome, Reason


@pytest.mark.parametrize(
    ("outcome", "upstream", "status"),
    [
        (OC.RATE_LIMITED, 429, 429),  # the client backs off as it would against the vendor
        (OC.OVERLOADED, 503, 503),
        (OC.OVERLOADED, 529, 503),  # Anthropic's 529 is not an RFC 9110 status
        (OC.SERVER, 500, 500),
        (OC.SERVER, 502, 502),
        (OC.SERVER, 520, 502),  # Cloudflare's 52x neither
        (OC.TIMEOUT, 504, 504),
        (OC.TIMEOUT, 408, 504),
        (OC.TIMEOUT, None, 504),
        (OC.CONNECT, None, 502),
        (OC.STREAM_CUT, 200, 502),  # a 200 that broke is no success
        (OC.STREAM_STALL, 200, 504),
        (OC.BAD_REQUEST, 400, 400),  # the client's own mistake, as the vendor saw it
        (OC.BAD_REQUEST, 422, 422),
        (OC.BAD_REQUEST, 413, 413),
        (OC.CONTENT_FILTER, 400, 400),
        (OC.CONTEXT_LENGTH, 400, 400),
        (OC.AUTH, 401, 502),  # the gateway's upstream key, not the client's
        (OC.AUTH, 403, 502),
        (OC.AUTH, 400, 502),  # Gemini's wrong key is a 400
        (OC.MODEL_GONE, 404, 502),  # the operator's route, not the client's model name
    ],
)
def test_a_failure_after_trying_answers(
    outcome: Outcome, upstream: int | None, status: int
) -> None:
    assert status_for(outcome, R.ATTEMPTS_EXHAUSTED, upstream) == status


def test_with_no_attempt_finished_the_gateway_is_unavailable() -> None:
    assert status_for(None, R.DEADLINE_EXCEEDED, None) == 503


@pytest.mark.parametrize(("reason", "status"), sorted(REJECT_STATUS.items()))
def test_a_rejection_answers_its_own_status_whatever_upstream_said(
    reason: Reason, status: int
) -> None:
    assert status_for(OC.SERVER, reason, 500) == status
