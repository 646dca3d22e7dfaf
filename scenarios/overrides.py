"""`--set KEY=VALUE` and sweep grids: change one field of a scenario or policy for one run.

Keys are dotted paths into the YAML as written (`traffic.arrivals.rate`,
`resilience.retries.max_attempts_per_deployment`, `faults.0.end`); values are
YAML scalars (`50`, `2h`, `true`). The first segment says which file it edits:
policy keys (`deployments`, `routes`, `resilience`, `tenants`) go to the policy,
everything else to the scenario. Overrides apply to the raw data before
validation, so an override gets the same file:line:field checks as the file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from router.core.errors import ConfigError, ConfigIssue

__all__ = ["POLICY_KEYS", "Override", "apply_overrides", "parse_override"]

POLICY_KEYS = frozenset({"deployments", "routes", "resilience", "tenants"})


@dataclass(frozen=True, slots=True)
class Override:
    """One `KEY=VALUE`, already split and parsed."""

    path: tuple[str | int, ...]
    value: Any
    text: str

    @property
    def for_policy(self) -> bool:
        """Whether the key edits the policy (else the scenario)."""
        return str(self.path[0]) in POLICY_KEYS


def parse_override(text: str) -> Override:
    """`a.b.0.c=VALUE` → Override; ConfigError naming the text when malformed."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(
            [ConfigIssue(file="--set", line=None, field=text, message="expected KEY=VALUE")]
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    path = tuple(int(part) if part.isdigit() else part for part in parts)
    return Override(path=path, value=value, text=text)


def apply_overrides(data: Any, overrides: Sequence[Override], *, source: str) -> Any:
    """A copy of `data` with each override set; intermediate mappings are created."""
    if not overrides:
        return data
    result = copy.deepcopy(data)
    for override in overrides:
        node = result
        *parents, last = override.path
        try:
            for part in parents:
                node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
            node[last] = override.value
        except (IndexError, KeyError, TypeError):
            raise ConfigError(
                [
                    ConfigIssue(
                        file=source,
                        line=None,
                        field=override.text,
                        message="--set path does not exist in this file",
                    )
                ]
            ) from None
    return result
