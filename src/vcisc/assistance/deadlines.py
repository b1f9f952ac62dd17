"""Per-step deadlines of an RFA, derived from its severity (DOMAIN.md §3), as pure code.

All three clocks start when the RFA is submitted, so that a requester can read at a glance how
long the federation has for each step:

* **triage** — the secretariat has decided (routed or rejected) the request;
* **first offer** — the first offer has arrived;
* **acceptance** — the requester has accepted an offer.

A clock is ``met`` when its step happened at or before the due time, ``breached`` when it happened
later or has not happened by a due time in the past, ``running`` while neither, and ``void`` when
the request ended (withdrawn, rejected, expired) before the step could happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = ["ClockState", "Deadlines", "Step", "clock_state", "deadlines_for"]


class Step(StrEnum):
    TRIAGE = "triage"
    FIRST_OFFER = "first-offer"
    ACCEPTANCE = "acceptance"


class ClockState(StrEnum):
    RUNNING = "running"
    MET = "met"
    BREACHED = "breached"
    VOID = "void"


H = timedelta(hours=1)

#: severity (PPD-41 level 0–5) -> (triage, first offer, acceptance), from submission.
_TARGETS: dict[int, tuple[timedelta, timedelta, timedelta]] = {
    5: (1 * H, 4 * H, 8 * H),
    4: (2 * H, 8 * H, 24 * H),
    3: (4 * H, 24 * H, 48 * H),
    2: (8 * H, 48 * H, 96 * H),
    1: (24 * H, 120 * H, 240 * H),
    0: (48 * H, 240 * H, 480 * H),
}


@dataclass(frozen=True)
class Deadlines:
    triage_due: datetime
    first_offer_due: datetime
    acceptance_due: datetime

    def due(self, step: Step) -> datetime:
        return {
            Step.TRIAGE: self.triage_due,
            Step.FIRST_OFFER: self.first_offer_due,
            Step.ACCEPTANCE: self.acceptance_due,
        }[step]


def deadlines_for(severity: int, submitted_at: datetime) -> Deadlines:
    """Due times for a request of ``severity`` submitted at ``submitted_at`` (aware datetime)."""
    if submitted_at.tzinfo is None:
        raise ValueError("submitted_at must be timezone-aware")
    if severity not in _TARGETS:
        raise ValueError(f"severity must be 0–5, got {severity}")
    triage, offer, acceptance = _TARGETS[severity]
    # Elapsed time, not wall-clock time: a DST change inside the window must not move the due time.
    start = submitted_at.astimezone(UTC)
    return Deadlines(start + triage, start + offer, start + acceptance)


def clock_state(
    due: datetime, happened_at: datetime | None, now: datetime, ended_at: datetime | None
) -> ClockState:
    """State of one clock.

    ``happened_at`` is when the step happened, if it did; ``ended_at`` is when the request ended
    without reaching it (withdrawn, rejected, expired), if it did.
    """
    if happened_at is not None:
        return ClockState.MET if happened_at <= due else ClockState.BREACHED
    if ended_at is not None:
        return ClockState.BREACHED if ended_at > due else ClockState.VOID
    return ClockState.BREACHED if now > due else ClockState.RUNNING
