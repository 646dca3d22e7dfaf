"""The sans-I/O routing core: policy, classification, strategies, health and the engine.

Nothing in this package does I/O, reads a clock or uses the global random
generator; `tests/test_architecture.py` enforces it. The names below are the
public surface that drivers, the simulator and tests import.
"""

from router.core.backoff import Backoff
from router.core.breaker import Admission, BreakerState, CircuitBreaker
from router.core.budget import EMPTY, UNLIMITED, Budget, RetryBudget
from router.core.classify import Candidate, Classifier
from router.core.decisions import (
    TERMINAL,
    CancelAttempt,
    CompleteRequest,
    Decision,
    FailRequest,
    RejectRequest,
    SendAttempt,
    Wait,
)
from router.core.domains import DomainDetector
from router.core.engine import ANONYMOUS, Engine
from router.core.errors import (
    BlastRadiusError,
    ConfigError,
    ConfigIssue,
    IllegalTransition,
    ProtocolViolation,
)
from router.core.events import (
    UNRESUMABLE,
    AttemptFinished,
    Event,
    FirstTokenReceived,
    RequestArrived,
    RequestCancelled,
    TimerFired,
)
from router.core.ledger import SpendLedger
from router.core.limits import RateLimiter, TokenBucket
from router.core.outcomes import DISPOSITIONS, Disposition, Outcome, classify_status
from router.core.policy import Policy, policy_from_data
from router.core.reasons import Reason
from router.core.throttle import AdaptiveThrottle
from router.core.trace import ATTEMPT_COLUMNS, REQUEST_COLUMNS, TraceRecorder

__all__ = [
    "ANONYMOUS",
    "ATTEMPT_COLUMNS",
    "DISPOSITIONS",
    "EMPTY",
    "REQUEST_COLUMNS",
    "TERMINAL",
    "UNLIMITED",
    "UNRESUMABLE",
    "AdaptiveThrottle",
    "Admission",
    "AttemptFinished",
    "Backoff",
    "BlastRadiusError",
    "BreakerState",
    "Budget",
    "CancelAttempt",
    "Candidate",
    "CircuitBreaker",
    "Classifier",
    "CompleteRequest",
    "ConfigError",
    "ConfigIssue",
    "Decision",
    "Disposition",
    "DomainDetector",
    "Engine",
    "Event",
    "FailRequest",
    "FirstTokenReceived",
    "IllegalTransition",
    "Outcome",
    "Policy",
    "ProtocolViolation",
    "RateLimiter",
    "Reason",
    "RejectRequest",
    "RequestArrived",
    "RequestCancelled",
    "RetryBudget",
    "SendAttempt",
    "SpendLedger",
    "TimerFired",
    "TokenBucket",
    "TraceRecorder",
    "Wait",
    "classify_status",
    "policy_from_data",
]
