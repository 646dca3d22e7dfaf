"""Failure-domain detector: see a shared outage as one outage.

A breaker sees one deployment. When Cloudflare's edge fails, OpenAI and
Anthropic (both behind `edge:cloudflare`) fail *together*; a router that waits
for each breaker to trip pays the outage once per deployment, and still tries
every other deployment behind the same edge. This detector watches the labels a
deployment depends on (DESIGN.md "failure domain").

A domain with at least `min_deployments` members becomes **suspect** when that
many distinct members have failed within `window_s` and no member of the domain
has succeeded since the oldest of those failures (one success in between means
the failures were not common-mode), unless a narrower domain holds every failing
member: two OpenAI deployments failing say `vendor:openai`, not `cloud:azure`,
so Azure OpenAI stays in play. Its members are then skipped, except that
every `probe_interval_s` one attempt may probe a member; any member's success
clears the domain.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.core.policy import DomainSettings

__all__ = ["DomainDetector", "DomainVerdict"]


class DomainVerdict:
    """Admission answers of the detector (plain constants: this is on the hot path)."""

    ALLOW = 0
    PROBE = 1
    SKIP = 2


class _Domain:
    __slots__ = (
        "last_failure",
        "last_success",
        "members",
        "narrower",
        "next_probe_at",
        "prober",
        "suspect_since",
    )

    def __init__(self, members: frozenset[int]) -> None:
        self.members = members
        self.narrower: tuple[frozenset[int], ...] = ()
        self.last_failure: dict[int, float] = {}
        self.last_success = float("-inf")
        self.suspect_since: float | None = None
        self.next_probe_at = 0.0
        self.prober: int | None = None  # the deployment whose probe is in flight


class DomainDetector:
    """Tracks shared domains of deployments (by index) and which are suspect."""

    __slots__ = ("_by_deployment", "_domains", "_settings", "_suspect_count", "suspicions")

    def __init__(self, domains_of: Mapping[int, tuple[str, ...]], settings: DomainSettings) -> None:
        self._settings = settings
        members: dict[str, list[int]] = {}
        for deployment, labels in domains_of.items():
            for label in labels:
                members.setdefault(label, []).append(deployment)
        shared = {label for label, who in members.items() if len(who) >= settings.min_deployments}
        self._domains = {label: _Domain(frozenset(members[label])) for label in sorted(shared)}
        for domain in self._domains.values():
            domain.narrower = tuple(
                other.members for other in self._domains.values() if other.members < domain.members
            )
        self._by_deployment: dict[int, tuple[tuple[str, _Domain], ...]] = {
            deployment: tuple((label, self._domains[label]) for label in labels if label in shared)
            for deployment, labels in domains_of.items()
        }
        self.suspicions: list[tuple[float, str, bool]] = []
        self._suspect_count = 0

    @property
    def tracked(self) -> tuple[str, ...]:
        """Domains shared by enough deployments to be watched."""
        return tuple(self._domains)

    def suspected(self) -> tuple[str, ...]:
        """Domains currently suspect."""
        return tuple(label for label, d in self._domains.items() if d.suspect_since is not None)

    def admit(self, now: float, deployment: int) -> int:
        """`DomainVerdict` for sending to `deployment`; a PROBE must be reported back."""
        if not self._suspect_count:
            return DomainVerdict.ALLOW
        verdict = DomainVerdict.ALLOW
        for _, domain in self._by_deployment.get(deployment, ()):
            if domain.suspect_since is None:
                continue
            if domain.prober is not None or now < domain.next_probe_at:
                return DomainVerdict.SKIP
            verdict = DomainVerdict.PROBE
        if verdict == DomainVerdict.PROBE:
            for _, domain in self._by_deployment[deployment]:
                if domain.suspect_since is not None:
                    domain.prober = deployment
                    domain.next_probe_at = now + self._settings.probe_interval_s
        return verdict

    def record(self, now: float, deployment: int, failure: bool, probe: bool) -> None:
        """An attempt on `deployment` ended; `failure` means a health failure (see outcomes)."""
        for label, domain in self._by_deployment.get(deployment, ()):
            if probe and domain.prober == deployment:
                domain.prober = None
            if not failure:
                domain.last_success = now
                if domain.suspect_since is not None:
                    domain.suspect_since = None
                    self._suspect_count -= 1
                    self.suspicions.append((now, label, False))
                continue
            domain.last_failure[deployment] = now
            if domain.suspect_since is not None:
                continue
            horizon = max(now - self._settings.window_s, domain.last_success)
            failing = {member for member, at in domain.last_failure.items() if at > horizon}
            if len(failing) >= self._settings.min_deployments and not any(
                failing <= narrower for narrower in domain.narrower
            ):
                domain.suspect_since = now
                self._suspect_count += 1
                domain.next_probe_at = now + self._settings.probe_interval_s
                self.suspicions.append((now, label, True))

    def release_probe(self, deployment: int) -> None:
        """A probe was not sent after all, or ended without a result (its request was cancelled).

        The domain was not probed, so the next attempt on any member may probe at once.
        """
        for _, domain in self._by_deployment.get(deployment, ()):
            if domain.prober == deployment:
                domain.prober = None
                domain.next_probe_at = float("-inf")
