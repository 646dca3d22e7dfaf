"""The one error root of blastradius.

Exceptions are for misuse — a broken policy file, an illegal state transition, an
event about an attempt the engine never sent. Every ordinary "no" (an open breaker,
an exhausted budget, a tenant over its cap) is a value with a `Reason`, not an
exception.

    BlastRadiusError
    ├── ConfigError            a policy or scenario file is invalid (file, line, field)
    ├── IllegalTransition      a state machine was asked for a move its table forbids
    └── ProtocolViolation      a driver fed the engine an event that cannot happen
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BlastRadiusError",
    "ConfigError",
    "ConfigIssue",
    "IllegalTransition",
    "ProtocolViolation",
]


class BlastRadiusError(Exception):
    """Root of every error the project raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem in a config file, located so a user can jump straight to it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class ConfigError(BlastRadiusError):
    """A config file is invalid; carries every issue found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class IllegalTransition(BlastRadiusError):
    """A state machine was driven by a signal its transition table does not allow."""

    def __init__(self, machine: str, state: str, signal: str) -> None:
        self.machine, self.state, self.signal = machine, state, signal
        super().__init__(f"{machine}: no transition from state {state!r} on signal {signal!r}")


class ProtocolViolation(BlastRadiusError):
    """A driver reported something impossible, such as the result of an unknown attempt."""
