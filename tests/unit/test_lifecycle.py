"""The RFA and offer state machines against the diagram of DOMAIN.md §3."""

from __future__ import annotations

import contextlib
import pickle
from collections import deque

import pytest

from vcisc.assistance.lifecycle import (
    TERMINAL,
    Action,
    IllegalTransition,
    OfferAction,
    OfferState,
    RfaState,
    allowed_actions,
    allowed_offer_actions,
    next_offer_state,
    next_state,
)

S = RfaState
A = Action

# Written out independently from the diagram in DOMAIN.md §3:
#
#   DRAFT → SUBMITTED → TRIAGE ⇄ NEEDS_INFO
#                         │ └→ REJECTED
#                         ↓
#                     CIRCULATED → (offers arrive) → OFFER_ACCEPTED → ACTIVE → REPORTING → CLOSED
#                         └→ EXPIRED
#   any state before CLOSED → WITHDRAWN
#
# plus: routing again keeps CIRCULATED, and several offers may be accepted for one RFA.
_FORWARD: dict[RfaState, dict[Action, RfaState]] = {
    S.DRAFT: {A.SUBMIT: S.SUBMITTED},
    S.SUBMITTED: {A.START_TRIAGE: S.TRIAGE},
    S.TRIAGE: {A.REQUEST_INFO: S.NEEDS_INFO, A.REJECT: S.REJECTED, A.ROUTE: S.CIRCULATED},
    S.NEEDS_INFO: {A.PROVIDE_INFO: S.TRIAGE},
    S.CIRCULATED: {A.ROUTE: S.CIRCULATED, A.ACCEPT_OFFER: S.OFFER_ACCEPTED, A.EXPIRE: S.EXPIRED},
    S.OFFER_ACCEPTED: {A.ACCEPT_OFFER: S.OFFER_ACCEPTED, A.ACTIVATE: S.ACTIVE},
    S.ACTIVE: {A.ACCEPT_OFFER: S.ACTIVE, A.REPORT: S.REPORTING},
    S.REPORTING: {A.CLOSE: S.CLOSED},
    S.CLOSED: {},
    S.REJECTED: {},
    S.EXPIRED: {},
    S.WITHDRAWN: {},
}
EXPECTED_TERMINAL = {S.CLOSED, S.REJECTED, S.EXPIRED, S.WITHDRAWN}
EXPECTED: dict[RfaState, dict[Action, RfaState]] = {
    state: {**moves, **({} if state in EXPECTED_TERMINAL else {A.WITHDRAW: S.WITHDRAWN})}
    for state, moves in _FORWARD.items()
}

ALL_PAIRS = [(state, action) for state in RfaState for action in Action]


def test_expected_table_covers_every_state() -> None:
    assert set(EXPECTED) == set(RfaState)


def test_state_and_action_wire_values() -> None:
    assert [s.value for s in RfaState] == [
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
    assert Action("accept-offer") is Action.ACCEPT_OFFER
    assert Action("start-triage") is Action.START_TRIAGE


def test_terminal_states() -> None:
    assert set(TERMINAL) == EXPECTED_TERMINAL


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_state_action_pair(state: RfaState, action: Action) -> None:
    expected = EXPECTED[state].get(action)
    if expected is not None:
        assert next_state(state, action) is expected
    else:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, action)
        exc = info.value
        assert exc.state == state.value
        assert exc.action == action.value
        assert set(exc.allowed) == {a.value for a in EXPECTED[state]}
        assert len(exc.allowed) == len(set(exc.allowed))
        message = str(exc)
        assert f"cannot {action.value} in state {state.value}" in message
        for allowed in EXPECTED[state]:
            assert allowed.value in message


@pytest.mark.parametrize("state", list(RfaState), ids=str)
def test_allowed_actions_match_diagram(state: RfaState) -> None:
    allowed = allowed_actions(state)
    assert isinstance(allowed, tuple)
    assert set(allowed) == set(EXPECTED[state])
    assert len(allowed) == len(set(allowed))
    # Stable order: asking twice gives the same tuple.
    assert allowed_actions(state) == allowed


@pytest.mark.parametrize("state", [s for s in RfaState if s not in EXPECTED_TERMINAL], ids=str)
def test_withdraw_allowed_from_every_non_terminal_state(state: RfaState) -> None:
    assert Action.WITHDRAW in allowed_actions(state)
    assert next_state(state, Action.WITHDRAW) is RfaState.WITHDRAWN


@pytest.mark.parametrize("state", sorted(EXPECTED_TERMINAL), ids=str)
def test_terminal_states_allow_nothing(state: RfaState) -> None:
    assert allowed_actions(state) == ()
    for action in Action:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, action)
        assert info.value.allowed == ()
        assert "none (the state is final)" in str(info.value)


def test_happy_path_to_closed() -> None:
    state = S.DRAFT
    path = [
        A.SUBMIT,
        A.START_TRIAGE,
        A.REQUEST_INFO,
        A.PROVIDE_INFO,
        A.ROUTE,
        A.ROUTE,
        A.ACCEPT_OFFER,
        A.ACCEPT_OFFER,
        A.ACTIVATE,
        A.ACCEPT_OFFER,
        A.REPORT,
        A.CLOSE,
    ]
    seen = []
    for action in path:
        state = next_state(state, action)
        seen.append(state)
    assert seen == [
        S.SUBMITTED,
        S.TRIAGE,
        S.NEEDS_INFO,
        S.TRIAGE,
        S.CIRCULATED,
        S.CIRCULATED,
        S.OFFER_ACCEPTED,
        S.OFFER_ACCEPTED,
        S.ACTIVE,
        S.ACTIVE,
        S.REPORTING,
        S.CLOSED,
    ]


def test_every_state_reachable_from_draft_and_every_path_ends_terminal() -> None:
    reached = {S.DRAFT}
    queue = deque([S.DRAFT])
    while queue:
        state = queue.popleft()
        for action in allowed_actions(state):
            target = next_state(state, action)
            if target not in reached:
                reached.add(target)
                queue.append(target)
    assert reached == set(RfaState)
    # From every non-terminal state some terminal state is reachable (no dead ends).
    for start in RfaState:
        seen = {start}
        queue = deque([start])
        while queue:
            state = queue.popleft()
            for action in allowed_actions(state):
                target = next_state(state, action)
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        assert seen & EXPECTED_TERMINAL, start


def test_expire_only_before_an_offer_is_accepted() -> None:
    states_with_expire = {s for s in RfaState if Action.EXPIRE in allowed_actions(s)}
    assert states_with_expire == {S.CIRCULATED}


def test_illegal_transition_is_an_exception_with_readable_message() -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state(S.DRAFT, A.CLOSE)
    exc = info.value
    assert isinstance(exc, Exception)
    assert str(exc) == "cannot close in state draft; allowed: submit, withdraw"


def test_illegal_transition_survives_context_managers_and_notes() -> None:
    # Generator-based context managers re-assign __traceback__ on the way out and
    # tools (hypothesis, pytest) add notes: the exception must stay an IllegalTransition.
    @contextlib.contextmanager
    def scope():  # type: ignore[no-untyped-def]
        yield

    with pytest.raises(IllegalTransition) as info, scope():
        next_state(S.CLOSED, A.SUBMIT)
    info.value.add_note("context")
    assert info.value.__notes__ == ["context"]


def test_illegal_transition_pickles() -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state(S.REPORTING, A.ROUTE)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.state, copy.action, copy.allowed) == ("reporting", "route", ("close", "withdraw"))


# ---------------------------------------------------------------- offers

OS = OfferState
OA = OfferAction

# DOMAIN.md §3: PROPOSED → ACCEPTED | DECLINED | WITHDRAWN, then ACTIVE → COMPLETED.
# The implementation also lets the offering organisation withdraw an accepted offer that has
# not started yet.
EXPECTED_OFFER: dict[OfferState, dict[OfferAction, OfferState]] = {
    OS.PROPOSED: {OA.ACCEPT: OS.ACCEPTED, OA.DECLINE: OS.DECLINED, OA.WITHDRAW: OS.WITHDRAWN},
    OS.ACCEPTED: {OA.START: OS.ACTIVE, OA.WITHDRAW: OS.WITHDRAWN},
    OS.ACTIVE: {OA.COMPLETE: OS.COMPLETED},
    OS.DECLINED: {},
    OS.WITHDRAWN: {},
    OS.COMPLETED: {},
}


def test_offer_table_covers_every_state() -> None:
    assert set(EXPECTED_OFFER) == set(OfferState)


@pytest.mark.parametrize(
    ("state", "action"), [(s, a) for s in OfferState for a in OfferAction], ids=lambda v: str(v)
)
def test_every_offer_state_action_pair(state: OfferState, action: OfferAction) -> None:
    expected = EXPECTED_OFFER[state].get(action)
    if expected is not None:
        assert next_offer_state(state, action) is expected
    else:
        with pytest.raises(IllegalTransition) as info:
            next_offer_state(state, action)
        assert info.value.state == state.value
        assert info.value.action == action.value
        assert set(info.value.allowed) == {a.value for a in EXPECTED_OFFER[state]}


@pytest.mark.parametrize("state", list(OfferState), ids=str)
def test_allowed_offer_actions(state: OfferState) -> None:
    assert set(allowed_offer_actions(state)) == set(EXPECTED_OFFER[state])
    assert allowed_offer_actions(state) == allowed_offer_actions(state)


def test_offer_happy_path() -> None:
    state = OS.PROPOSED
    for action in (OA.ACCEPT, OA.START, OA.COMPLETE):
        state = next_offer_state(state, action)
    assert state is OS.COMPLETED


@pytest.mark.parametrize("state", [OS.DECLINED, OS.WITHDRAWN, OS.COMPLETED], ids=str)
def test_final_offer_states(state: OfferState) -> None:
    assert allowed_offer_actions(state) == ()
    with pytest.raises(IllegalTransition, match=r"none \(the state is final\)"):
        next_offer_state(state, OA.WITHDRAW)


def test_active_offer_cannot_be_withdrawn_or_declined() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed: complete$"):
        next_offer_state(OS.ACTIVE, OA.WITHDRAW)
    with pytest.raises(IllegalTransition):
        next_offer_state(OS.ACTIVE, OA.DECLINE)
