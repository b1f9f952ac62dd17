"""The request-for-assistance and offer state machines of DOMAIN.md §3, as pure code.

::

    DRAFT → SUBMITTED → TRIAGE ⇄ NEEDS_INFO
                          │ └→ REJECTED
                          ↓
                      CIRCULATED → (offers arrive) → OFFER_ACCEPTED → ACTIVE → REPORTING → CLOSED
                          └→ EXPIRED (deadline passed with no accepted offer)
    any state before CLOSED → WITHDRAWN (by the requester)

Who may fire an action is decided in :mod:`vcisc.authz`; this module only knows which actions
exist in which state. No I/O, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "TERMINAL",
    "Action",
    "IllegalTransition",
    "OfferAction",
    "OfferState",
    "RfaState",
    "RfaStateName",
    "allowed_actions",
    "allowed_offer_actions",
    "next_offer_state",
    "next_state",
]


class RfaState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    TRIAGE = "triage"
    NEEDS_INFO = "needs-info"
    REJECTED = "rejected"
    CIRCULATED = "circulated"
    OFFER_ACCEPTED = "offer-accepted"
    ACTIVE = "active"
    REPORTING = "reporting"
    CLOSED = "closed"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


#: The states as a Literal type, for typed API schemas (a unit test keeps it equal to RfaState).
RfaStateName = Literal[
    "draft",
    "submitted",
    "triage",
    "needs-info",
    "rejected",
    "circulated",
    "offer-accepted",
    "active",
    "reporting",
    "closed",
    "expired",
    "withdrawn",
]


class Action(StrEnum):
    """Named transitions. ``accept-offer`` and ``route`` are fired by their own services."""

    SUBMIT = "submit"
    START_TRIAGE = "start-triage"
    REQUEST_INFO = "request-info"
    PROVIDE_INFO = "provide-info"
    REJECT = "reject"
    ROUTE = "route"
    ACCEPT_OFFER = "accept-offer"
    ACTIVATE = "activate"
    REPORT = "report"
    CLOSE = "close"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"


TERMINAL: frozenset[RfaState] = frozenset(
    {RfaState.CLOSED, RfaState.REJECTED, RfaState.EXPIRED, RfaState.WITHDRAWN}
)

_TRANSITIONS: dict[RfaState, dict[Action, RfaState]] = {
    RfaState.DRAFT: {Action.SUBMIT: RfaState.SUBMITTED},
    RfaState.SUBMITTED: {Action.START_TRIAGE: RfaState.TRIAGE},
    RfaState.TRIAGE: {
        Action.REQUEST_INFO: RfaState.NEEDS_INFO,
        Action.REJECT: RfaState.REJECTED,
        Action.ROUTE: RfaState.CIRCULATED,
    },
    RfaState.NEEDS_INFO: {Action.PROVIDE_INFO: RfaState.TRIAGE},
    RfaState.CIRCULATED: {
        # Routing again adds recipients without changing the state.
        Action.ROUTE: RfaState.CIRCULATED,
        Action.ACCEPT_OFFER: RfaState.OFFER_ACCEPTED,
        Action.EXPIRE: RfaState.EXPIRED,
    },
    RfaState.OFFER_ACCEPTED: {
        # Several offers may be accepted for one RFA (DOMAIN.md §3).
        Action.ACCEPT_OFFER: RfaState.OFFER_ACCEPTED,
        Action.ACTIVATE: RfaState.ACTIVE,
    },
    RfaState.ACTIVE: {
        Action.ACCEPT_OFFER: RfaState.ACTIVE,
        Action.REPORT: RfaState.REPORTING,
    },
    RfaState.REPORTING: {Action.CLOSE: RfaState.CLOSED},
}

# "any state before CLOSED → WITHDRAWN": every state that is not already terminal.
for _state in RfaState:
    if _state not in TERMINAL:
        _TRANSITIONS.setdefault(_state, {})[Action.WITHDRAW] = RfaState.WITHDRAWN


@dataclass(eq=False)  # not frozen: raising, add_note() and pickling assign attributes
class IllegalTransition(Exception):
    """An action that the current state does not allow; carries the allowed ones."""

    state: str
    action: str
    allowed: tuple[str, ...]

    def __str__(self) -> str:
        allowed = ", ".join(self.allowed) or "none (the state is final)"
        return f"cannot {self.action} in state {self.state}; allowed: {allowed}"


def allowed_actions(state: RfaState) -> tuple[Action, ...]:
    """The actions the state machine allows from ``state``, in a stable order."""
    return tuple(_TRANSITIONS.get(state, {}))


def next_state(state: RfaState, action: Action) -> RfaState:
    """The state after ``action``; raise :class:`IllegalTransition` naming the allowed actions."""
    try:
        return _TRANSITIONS[state][action]
    except KeyError:
        raise IllegalTransition(
            state.value, action.value, tuple(a.value for a in allowed_actions(state))
        ) from None


class OfferState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    ACTIVE = "active"
    COMPLETED = "completed"


class OfferAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"
    START = "start"
    COMPLETE = "complete"


_OFFER_TRANSITIONS: dict[OfferState, dict[OfferAction, OfferState]] = {
    OfferState.PROPOSED: {
        OfferAction.ACCEPT: OfferState.ACCEPTED,
        OfferAction.DECLINE: OfferState.DECLINED,
        OfferAction.WITHDRAW: OfferState.WITHDRAWN,
    },
    OfferState.ACCEPTED: {
        OfferAction.START: OfferState.ACTIVE,
        OfferAction.WITHDRAW: OfferState.WITHDRAWN,
    },
    OfferState.ACTIVE: {OfferAction.COMPLETE: OfferState.COMPLETED},
}


def allowed_offer_actions(state: OfferState) -> tuple[OfferAction, ...]:
    return tuple(_OFFER_TRANSITIONS.get(state, {}))


def next_offer_state(state: OfferState, action: OfferAction) -> OfferState:
    try:
        return _OFFER_TRANSITIONS[state][action]
    except KeyError:
        raise IllegalTransition(
            state.value, action.value, tuple(a.value for a in allowed_offer_actions(state))
        ) from None
