"""Token buckets for requests and tokens per minute, per tenant and per deployment.

Enforced before an attempt is sent: a tenant over its RPM/TPM is refused
(`tenant_rate_limited`); a deployment whose provider limit would be exceeded is
skipped (`deployment_rate_limited`) so the router spends its own budget instead
of collecting 429s from the provider.
"""

from __future__ import annotations

from router.core.policy import RateLimits

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """Holds up to `capacity` tokens and refills `refill_per_s` per second."""

    __slots__ = ("_level", "_updated", "capacity", "refill_per_s")

    def __init__(self, *, capacity: float, refill_per_s: float) -> None:
        if not (capacity > 0 and refill_per_s > 0):  # NaN would admit everything
            raise ValueError(
                "token bucket needs capacity > 0 and refill_per_s > 0, "
                f"got {capacity} and {refill_per_s}"
            )
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self._level = capacity
        self._updated = float("-inf")

    def level(self, now: float) -> float:
        """Tokens available at `now`."""
        if now > self._updated:
            if self._updated != float("-inf"):
                self._level = min(
                    self.capacity, self._level + (now - self._updated) * self.refill_per_s
                )
            self._updated = now
        return self._level

    def try_take(self, now: float, amount: float) -> bool:
        """Take `amount` if available; False leaves the bucket untouched."""
        if self.level(now) < amount:
            return False
        self._level -= amount
        return True

    def give_back(self, amount: float) -> None:
        """Return tokens taken for work that was then not done."""
        self._level = min(self.capacity, self._level + amount)


class RateLimiter:
    """RPM and TPM together: both must admit, or neither is charged."""

    __slots__ = ("_rpm", "_tpm")

    def __init__(self, limits: RateLimits) -> None:
        self._rpm = (
            TokenBucket(capacity=limits.rpm, refill_per_s=limits.rpm / 60.0) if limits.rpm else None
        )
        self._tpm = (
            TokenBucket(capacity=limits.tpm, refill_per_s=limits.tpm / 60.0) if limits.tpm else None
        )

    @property
    def unlimited(self) -> bool:
        """No limit configured: callers may skip the call entirely."""
        return self._rpm is None and self._tpm is None

    def refund(self, tokens: int) -> None:
        """Undo a `try_acquire` whose work was then not sent."""
        if self._rpm is not None:
            self._rpm.give_back(1)
        if self._tpm is not None:
            self._tpm.give_back(tokens)

    def try_acquire(self, now: float, tokens: int) -> bool:
        """Charge one request and `tokens` tokens, or nothing."""
        if self._rpm is not None and not self._rpm.try_take(now, 1):
            return False
        if self._tpm is not None and not self._tpm.try_take(now, tokens):
            if self._rpm is not None:
                self._rpm.give_back(1)
            return False
        return True
