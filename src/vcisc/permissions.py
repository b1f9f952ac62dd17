"""Who may do what: the permission matrix (issue 4), as data.

Rows are the actions a user can take — every service function that acts for a user, every
lifecycle and offer action, the workspace, directory and account writes — and the reads that
need-to-know turns on. Columns are *personas*: one user each, in one relationship to one request
(requester, routed organisation, participant, named member, secretariat, uninvolved, observer).
A cell says what that user gets: allowed, allowed on their own organisation's object only,
refused (403, or 409 for the state of things), or nothing at all (404: the object looks absent).

As much as possible is read from the code rather than typed again here:

* the lifecycle rows come from :class:`~vcisc.assistance.lifecycle.Action` and the state machine
  (in which states each action applies), and who fires them from the write path's own
  ``_REQUESTER_ACTIONS`` / ``_SECRETARIAT_ACTIONS``; only the few actions decided elsewhere are
  declared in :data:`_DECIDED_ELSEWHERE`. An action that is in none of them stops the matrix
  from being built;
* the offer rows come from :class:`~vcisc.assistance.lifecycle.OfferAction` (an action without
  declared cells stops the build), their conditions from the offer state machine;
* the directory rows come from the models the directory service can edit
  (``federation.services._EDITABLE``); the states in which workspaces, offers and matching are
  open from the services' own constants.

``tests/integration/test_permissions.py`` holds the code to every cell (each persona performs
each action through the service or the API) and checks that every service function acting for a
user has a row. ``python -m vcisc.permissions > docs/permissions.md`` writes the table; a test
fails when the file differs from what the code generates.

Needs configured Django (it reads the services' constants); :func:`main` sets it up.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from functools import cache

from vcisc.assistance.lifecycle import (
    TERMINAL,
    Action,
    OfferAction,
    OfferState,
    RfaState,
    allowed_actions,
    allowed_offer_actions,
)

__all__ = [
    "NOT_ACTIONS",
    "PERSONAS",
    "WRITE_PATH_MODULES",
    "Cell",
    "Matrix",
    "MatrixError",
    "Party",
    "Persona",
    "Row",
    "Verdict",
    "lifecycle_parties",
    "main",
    "matrix",
    "render",
    "states_allowing",
    "user_actions",
]


class MatrixError(RuntimeError):
    """The code has something the matrix does not say (a new action, a new editable model)."""


class Verdict(StrEnum):
    """What one persona gets when it tries one action."""

    ALLOWED = "allowed"
    #: Allowed on the persona's own (organisation's) object only; the row says what "own" means
    #: and what the persona gets on someone else's (:attr:`Row.others`).
    OWN = "own"
    #: 403: the persona may see the object but not do this. For reads: shown nothing, or the
    #: metadata only.
    FORBIDDEN = "forbidden"
    #: 409: refused for the state of things (the cell's note says which).
    CONFLICT = "conflict"
    #: 422: refused as invalid input (used for :attr:`Row.others` only).
    INVALID = "invalid"
    #: 404: as if the object did not exist; the persona does not learn that it does.
    HIDDEN = "hidden"


_SYMBOL = {
    Verdict.ALLOWED: "✓",
    Verdict.OWN: "✓ own",
    Verdict.FORBIDDEN: "✗",
    Verdict.CONFLICT: "✗ 409",
    Verdict.INVALID: "✗ 422",
    Verdict.HIDDEN: "—",
}

_STATUS = {
    Verdict.FORBIDDEN: 403,
    Verdict.CONFLICT: 409,
    Verdict.INVALID: 422,
    Verdict.HIDDEN: 404,
}


# --- columns ------------------------------------------------------------------------------------

#: The order of the request's story, to say from when a persona is involved.
_PROGRESS = (
    RfaState.DRAFT,
    RfaState.SUBMITTED,
    RfaState.TRIAGE,
    RfaState.NEEDS_INFO,
    RfaState.CIRCULATED,
    RfaState.OFFER_ACCEPTED,
    RfaState.ACTIVE,
    RfaState.REPORTING,
)


@dataclass(frozen=True)
class Persona:
    """One column: a user with a role, in one relationship to the request the row is about."""

    key: str
    title: str
    who: str
    #: From which state on its organisation is involved in the request (sees it at all);
    #: ``None``: never.
    involved_from: RfaState | None

    def involved_in(self, state: RfaState) -> bool:
        if self.involved_from is None:
            return False
        return _PROGRESS.index(state) >= _PROGRESS.index(self.involved_from)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "requester",
        "Requester liaison",
        "liaison officer of the requesting organisation, who filed the request and accepted the "
        "offer (so a named member of the engagement)",
        RfaState.DRAFT,
    ),
    Persona(
        "requester_analyst",
        "Requester analyst",
        "analyst of the requesting organisation, not named in the engagement",
        RfaState.DRAFT,
    ),
    Persona(
        "routed",
        "Routed liaison",
        "liaison officer of an organisation the request was routed to, whose offer (if any) is "
        "not accepted",
        RfaState.CIRCULATED,
    ),
    Persona(
        "participant",
        "Participant liaison",
        "liaison officer of an organisation whose offer was accepted, who made that offer (so a "
        "named member); before the acceptance, a routed organisation",
        RfaState.CIRCULATED,
    ),
    Persona(
        "participant_analyst",
        "Participant analyst",
        "analyst of the participant organisation, not named in the engagement",
        RfaState.CIRCULATED,
    ),
    Persona(
        "member",
        "Named member",
        "analyst of the participant organisation whom its liaison named a member of the engagement",
        RfaState.CIRCULATED,
    ),
    Persona(
        "coordinator",
        "Secretariat coordinator",
        "user of the secretariat with the coordinator role",
        RfaState.SUBMITTED,
    ),
    Persona(
        "admin",
        "Admin",
        "operator: user of the secretariat with the admin role only",
        None,
    ),
    Persona(
        "other",
        "Other organisation",
        "liaison officer of an organisation not involved in the request",
        None,
    ),
    Persona(
        "observer",
        "Observer",
        "user with the observer role, of an observer nation's organisation",
        None,
    ),
)

_KEYS = tuple(p.key for p in PERSONAS)


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    verdict: Verdict
    note: str = ""

    def text(self) -> str:
        symbol = _SYMBOL[self.verdict]
        return f"{symbol} {self.note}" if self.note else symbol


@dataclass(frozen=True)
class Row:
    key: str
    group: str
    title: str
    #: How it is done: the service function, or the API route for reads.
    via: str
    #: What must hold for the allowed cells (request state, offer state, …).
    when: str
    cells: Mapping[str, Cell]
    #: The request's state in which the row is judged (``None``: no request involved).
    stage: RfaState | None = None
    #: For :attr:`Verdict.OWN` cells: what is the persona's own.
    own: str = ""
    #: For :attr:`Verdict.OWN` cells: what the persona gets on someone else's object.
    others: Verdict | None = None
    #: The service functions (``module.function``) this row is about.
    covers: frozenset[str] = field(default_factory=frozenset)

    def cell(self, persona: str) -> Cell:
        return self.cells[persona]

    def condition(self) -> str:
        parts = [self.when] if self.when else []
        if self.own:
            others = f" (others: {_STATUS[self.others]})" if self.others else ""
            parts.append(f"own: {self.own}{others}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Matrix:
    rows: tuple[Row, ...]

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)

    def groups(self) -> list[tuple[str, list[Row]]]:
        found: dict[str, list[Row]] = {}
        for row in self.rows:
            found.setdefault(row.group, []).append(row)
        return list(found.items())


def _cells(
    default: Verdict,
    *,
    allowed: Iterable[str] = (),
    own: Iterable[str] = (),
    forbidden: Iterable[str] = (),
    conflict: Iterable[str] = (),
    hidden: Iterable[str] = (),
    notes: Mapping[str, str] | None = None,
) -> dict[str, Cell]:
    """Cells from lists of personas per verdict; the rest get ``default``."""
    chosen: dict[str, Verdict] = {}
    for verdict, keys in (
        (Verdict.ALLOWED, allowed),
        (Verdict.OWN, own),
        (Verdict.FORBIDDEN, forbidden),
        (Verdict.CONFLICT, conflict),
        (Verdict.HIDDEN, hidden),
    ):
        for key in keys:
            if key not in _KEYS or key in chosen:
                raise MatrixError(f"persona {key!r} unknown or given twice")
            chosen[key] = verdict
    notes = notes or {}
    for key in notes:
        if key not in _KEYS:
            raise MatrixError(f"note for unknown persona {key!r}")
    return {k: Cell(chosen.get(k, default), notes.get(k, "")) for k in _KEYS}


def _states(states: Iterable[RfaState | OfferState]) -> str:
    return " or ".join(s.value for s in states)


def _svc(module: str, *names: str) -> frozenset[str]:
    return frozenset(f"vcisc.{module}.services.{n}" for n in names)


#: Involved personas who work in an engagement (participants with the liaison or analyst role).
_WORKERS = ("requester", "requester_analyst", "participant", "participant_analyst", "member")
#: Liaison officers of organisations other than the secretariat.
_LIAISONS = ("requester", "routed", "participant", "other")


# --- requests and their lifecycle ---------------------------------------------------------------


class Party(Enum):
    REQUESTER = "the requester's liaison"
    SECRETARIAT = "a secretariat coordinator"
    EITHER = "the requester's liaison or a secretariat coordinator"


#: Lifecycle actions whose party the write path decides outside its two sets.
_DECIDED_ELSEWHERE = {
    Action.ROUTE: Party.SECRETARIAT,  # route() checks the coordinator itself
    Action.ACCEPT_OFFER: Party.REQUESTER,  # offer_action(accept)
    Action.ACTIVATE: Party.EITHER,
    Action.CLOSE: Party.REQUESTER,
}

_ACTION_TITLES = {
    Action.SUBMIT: "Submit the request",
    Action.START_TRIAGE: "Start triage",
    Action.REQUEST_INFO: "Ask the requester for more information",
    Action.PROVIDE_INFO: "Provide the information asked for",
    Action.REJECT: "Reject the request",
    Action.ROUTE: "Route the request to organisations",
    Action.ACTIVATE: "Activate the engagement",
    Action.REPORT: "Move to reporting",
    Action.CLOSE: "Close the request",
    Action.EXPIRE: "Expire the request",
    Action.WITHDRAW: "Withdraw the request",
}

_ACTION_NOTES = {
    Action.REQUEST_INFO: "with a reason",
    Action.REJECT: "with a reason",
    Action.ROUTE: "again while circulated, to add recipients",
    Action.CLOSE: "once the after-action review is in",
    Action.EXPIRE: "even before `needed_by` passes; `vcisc expire-overdue` expires overdue ones",
}


def lifecycle_parties() -> dict[Action, Party]:
    """Who fires each lifecycle action, read from the write path's own sets."""
    from vcisc.assistance import services

    parties: dict[Action, Party] = {}
    for actions, party in (
        (services._REQUESTER_ACTIONS, Party.REQUESTER),
        (services._SECRETARIAT_ACTIONS, Party.SECRETARIAT),
        (_DECIDED_ELSEWHERE.keys(), None),
    ):
        for action in actions:
            if action in parties:
                raise MatrixError(f"lifecycle action {action} has two parties")
            parties[action] = party or _DECIDED_ELSEWHERE[action]
    missing = [a.value for a in Action if a not in parties]
    if missing:
        raise MatrixError(
            f"lifecycle action(s) {', '.join(missing)} belong to no party: add them to the "
            "write path's _REQUESTER_ACTIONS or _SECRETARIAT_ACTIONS, or to _DECIDED_ELSEWHERE"
        )
    return parties


def states_allowing(action: Action) -> list[RfaState]:
    return [s for s in RfaState if action in allowed_actions(s)]


def _when(action: Action) -> str:
    states = states_allowing(action)
    if set(states) == set(RfaState) - TERMINAL:
        text = "any time before it ends"
    else:
        text = f"request {_states(states)}"
    note = _ACTION_NOTES.get(action)
    return f"{text}; {note}" if note else text


def _lifecycle_row(action: Action, party: Party) -> Row:
    """Allowed for the party; refused for the others who see the request in the last state the
    action applies in; hidden from the rest."""
    stage = [s for s in _PROGRESS if s in states_allowing(action)][-1]
    actors = {
        Party.REQUESTER: {"requester"},
        Party.SECRETARIAT: {"coordinator"},
        Party.EITHER: {"requester", "coordinator"},
    }[party]
    cells = {}
    for p in PERSONAS:
        if p.key in actors:
            cells[p.key] = Cell(Verdict.ALLOWED)
        elif p.involved_in(stage):
            cells[p.key] = Cell(Verdict.FORBIDDEN)
        else:
            cells[p.key] = Cell(Verdict.HIDDEN)
    route = action is Action.ROUTE
    return Row(
        key=f"rfa.{action.value}",
        group="Requests for assistance",
        title=_ACTION_TITLES.get(action, f"`{action.value}`"),
        via="`route`" if route else f"`transition` `{action.value}`",
        when=_when(action),
        cells=cells,
        stage=stage,
        covers=_svc("assistance", "route" if route else "transition"),
    )


def _request_rows() -> list[Row]:
    group = "Requests for assistance"
    rows = [
        Row(
            key="rfa.create",
            group=group,
            title="File a request (a draft, or submitted at once)",
            via="`create_rfa`",
            when="for their own organisation; not the secretariat, not observer nations",
            cells=_cells(
                Verdict.FORBIDDEN, allowed=("requester", "routed", "participant", "other")
            ),
            covers=_svc("assistance", "create_rfa"),
        ),
        Row(
            key="rfa.update",
            group=group,
            title="Edit the request",
            via="`update_rfa`",
            when="request draft or needs-info; severity fixed once submitted",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=("requester",),
                forbidden=("requester_analyst", "coordinator"),
            ),
            stage=RfaState.NEEDS_INFO,
            covers=_svc("assistance", "update_rfa"),
        ),
    ]
    parties = lifecycle_parties()
    for action in Action:
        if action is Action.ACCEPT_OFFER:
            continue  # the "Accept an offer" row
        rows.append(_lifecycle_row(action, parties[action]))
    return rows


# --- offers -------------------------------------------------------------------------------------

_OFFER_TITLES = {
    OfferAction.ACCEPT: "Accept an offer",
    OfferAction.DECLINE: "Decline an offer",
    OfferAction.WITHDRAW: "Withdraw an offer",
    OfferAction.START: "Start work on an accepted offer",
    OfferAction.COMPLETE: "Complete an offer",
}

_OWN_OFFER = "their organisation's offer"


def _offer_action_cells() -> dict[OfferAction, tuple[RfaState, dict[str, Cell]]]:
    """Per offer action: the request's state it is judged in, and the cells. The requester
    decides on offers; the offering organisation's liaison moves its own."""
    decide = _cells(
        Verdict.HIDDEN,
        allowed=("requester",),
        forbidden=("requester_analyst", "routed", "coordinator"),
        notes={
            "routed": "its own",
            "participant": "others' offers are hidden",
            "participant_analyst": "others' offers are hidden",
            "member": "others' offers are hidden",
        },
    )

    def offerer(routed: Cell) -> dict[str, Cell]:
        cells = _cells(
            Verdict.HIDDEN,
            own=("participant",),
            forbidden=("requester", "requester_analyst", "participant_analyst", "member"),
        )
        cells["coordinator"] = Cell(Verdict.FORBIDDEN)
        cells["routed"] = routed
        return cells

    not_accepted = Cell(Verdict.CONFLICT, "its offer is not accepted")
    return {
        OfferAction.ACCEPT: (RfaState.OFFER_ACCEPTED, decide),
        OfferAction.DECLINE: (RfaState.OFFER_ACCEPTED, decide),
        OfferAction.WITHDRAW: (RfaState.OFFER_ACCEPTED, offerer(Cell(Verdict.OWN))),
        OfferAction.START: (RfaState.OFFER_ACCEPTED, offerer(not_accepted)),
        OfferAction.COMPLETE: (RfaState.ACTIVE, offerer(not_accepted)),
    }


def _offer_rows() -> list[Row]:
    from vcisc.assistance import services

    group = "Offers"
    rows = [
        Row(
            key="offer.create",
            group=group,
            title="Offer help",
            via="`create_offer`",
            when=f"request {_states(services._OFFERABLE)}; routed organisations; "
            "one open offer per organisation",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=("routed",),
                forbidden=(
                    "requester",
                    "requester_analyst",
                    "participant_analyst",
                    "member",
                    "coordinator",
                ),
                conflict=("participant",),
                notes={"participant": "its offer is open"},
            ),
            stage=RfaState.OFFER_ACCEPTED,
            covers=_svc("assistance", "create_offer"),
        )
    ]
    declared = _offer_action_cells()
    for action in OfferAction:
        if action not in declared:
            raise MatrixError(f"offer action {action} has no row: declare its cells")
        stage, cells = declared[action]
        offer_states = [s for s in OfferState if action in allowed_offer_actions(s)]
        when = f"offer {_states(offer_states)}"
        if action is OfferAction.ACCEPT:
            when += f"; request {_states(states_allowing(Action.ACCEPT_OFFER))}"
        own = any(c.verdict is Verdict.OWN for c in cells.values())
        rows.append(
            Row(
                key=f"offer.{action.value}",
                group=group,
                title=_OFFER_TITLES.get(action, f"`{action.value}` an offer"),
                via=f"`offer_action` `{action.value}`",
                when=when,
                cells=cells,
                stage=stage,
                own=_OWN_OFFER if own else "",
                others=Verdict.HIDDEN if own else None,
                covers=_svc("assistance", "offer_action"),
            )
        )
    return rows


# --- the engagement -----------------------------------------------------------------------------


def _engagement_rows() -> list[Row]:
    from vcisc.engagements import services

    group = "Engagement workspace"
    open_for_work = f"request {_states(services.OPEN_STATES)}"
    work = _cells(Verdict.HIDDEN, allowed=_WORKERS, forbidden=("coordinator",))
    red = _cells(
        Verdict.HIDDEN,
        allowed=("requester", "participant", "member"),
        forbidden=("requester_analyst", "participant_analyst", "coordinator"),
    )

    def item(
        key: str,
        title: str,
        fn: str,
        cells: dict[str, Cell],
        when: str = "",
        stage: RfaState = RfaState.ACTIVE,
        module: str = "services",
    ) -> Row:
        return Row(
            key=key,
            group=group,
            title=title,
            via=f"`{fn}`",
            when=when or open_for_work,
            cells=cells,
            stage=stage,
            covers=frozenset({f"vcisc.engagements.{module}.{fn}"}),
        )

    return [
        Row(
            key="engagement.member",
            group=group,
            title="Name a colleague a member of the engagement",
            via="`add_member`",
            when="once the engagement is open",
            cells=_cells(
                Verdict.HIDDEN,
                own=("requester", "participant"),
                forbidden=("requester_analyst", "participant_analyst", "member", "coordinator"),
            ),
            stage=RfaState.ACTIVE,
            own="colleagues of their organisation",
            others=Verdict.INVALID,
            covers=_svc("engagements", "add_member"),
        ),
        item("task.create", "Add a task", "add_task", work),
        item("task.update", "Update a task", "update_task", work),
        item("note.create", "Add a note", "add_note", work),
        item("sitrep.create", "Add a situation report", "add_sitrep", work),
        Row(
            key="taxii.add",
            group=group,
            title="Add STIX objects over TAXII to the engagement's collection",
            via="`vcisc.sharing.taxii.store.add_objects` "
            "(`POST /taxii2/vcisc/collections/{engagement}/objects/`)",
            when=f"{open_for_work}; TLP:RED objects from named members only",
            # Over TAXII the collection exists only for participants: the secretariat, which
            # reads the engagement's metadata in the API, finds no collection (404).
            cells=_cells(Verdict.HIDDEN, allowed=_WORKERS),
            stage=RfaState.ACTIVE,
            # A federation collection's objects join its feed on the same path, after its checks.
            covers=frozenset({"vcisc.feeds.services.add_from_collection"}),
        ),
        item("indicator.create", "Add an indicator", "add_indicator", work, module="indicators"),
        replace(
            item(
                "indicator.import",
                "Import indicators (CSV, free text, STIX 2.1, MISP)",
                "import_indicators",
                work,
                module="indicators",
            ),
            via="`import_indicators`, `import_stix_stream` (the CLI's import of a STIX file)",
            covers=frozenset(
                {
                    "vcisc.engagements.indicators.import_indicators",
                    "vcisc.engagements.indicators.import_stix_stream",
                }
            ),
        ),
        Row(
            key="workspace.red",
            group=group,
            title="Write TLP:RED workspace material",
            via="`add_task`, `add_note`, `add_sitrep`, `submit_review` with `tlp: red`",
            when=f"{open_for_work}; named members",
            cells=red,
            stage=RfaState.ACTIVE,
        ),
        item(
            "review.create",
            "Submit the after-action review",
            "submit_review",
            _cells(
                Verdict.HIDDEN,
                allowed=("requester",),
                forbidden=(*_WORKERS[1:], "coordinator"),
            ),
            when="request reporting; once",
            stage=RfaState.REPORTING,
        ),
    ]


# --- reads --------------------------------------------------------------------------------------


def _read_rows() -> list[Row]:
    from vcisc.matching.services import MATCHABLE_STATES

    group = "Reading requests, offers and engagements"
    involved = ("requester", "requester_analyst", "routed", *_WORKERS[2:], "coordinator")
    theirs = ("routed", "participant", "participant_analyst", "member")
    everyone = ("requester", "requester_analyst", "coordinator")
    return [
        Row(
            key="read.request",
            group=group,
            title="See that the request exists, and its metadata",
            via="`GET /requests/{id}`",
            when="",
            cells=_cells(Verdict.HIDDEN, allowed=involved, notes={"coordinator": "once submitted"}),
            stage=RfaState.ACTIVE,
        ),
        Row(
            key="read.content",
            group=group,
            title="Read the request's content, below TLP:RED",
            via="`GET /requests/{id}`",
            when="",
            cells=_cells(Verdict.HIDDEN, allowed=involved),
            stage=RfaState.ACTIVE,
        ),
        Row(
            key="read.content.red",
            group=group,
            title="Read the request's content at TLP:RED",
            via="`GET /requests/{id}`",
            when="",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=("requester", "requester_analyst", "participant", "member"),
                forbidden=("routed", "participant_analyst", "coordinator"),
                notes={
                    "participant": "named",
                    "member": "named",
                    "routed": "metadata",
                    "participant_analyst": "metadata",
                    "coordinator": "metadata",
                },
            ),
            stage=RfaState.ACTIVE,
        ),
        Row(
            key="read.offers",
            group=group,
            title="See the offers on the request",
            via="`GET /requests/{id}/offers`",
            when="",
            cells=_cells(Verdict.HIDDEN, allowed=everyone, own=theirs),
            stage=RfaState.OFFER_ACCEPTED,
            own="their organisation's offers",
        ),
        Row(
            key="read.routes",
            group=group,
            title="See whom the request was routed to",
            via="`GET /requests/{id}/routes`",
            when="",
            cells=_cells(Verdict.HIDDEN, allowed=everyone, own=theirs),
            stage=RfaState.ACTIVE,
            own="their organisation's routing",
        ),
        Row(
            key="read.matches",
            group=group,
            title="See the ranked matches and their reasons",
            via="`GET /requests/{id}/matches`",
            when=f"request {_states(MATCHABLE_STATES)}",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=("coordinator",),
                forbidden=("requester", "requester_analyst", "routed", *_WORKERS[2:]),
            ),
            stage=RfaState.CIRCULATED,
        ),
        Row(
            key="read.engagement",
            group=group,
            title="See the engagement and who takes part",
            via="`GET /engagements/{id}`",
            when="",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=(*_WORKERS, "coordinator"),
                notes={"coordinator": "no members, no workspace"},
            ),
            stage=RfaState.ACTIVE,
        ),
        Row(
            key="read.items",
            group=group,
            title="See workspace items (tasks, notes, SITREPs, review) below TLP:RED",
            via="`GET /engagements/{id}/tasks` (notes, sitreps, review)",
            when="",
            cells=_cells(Verdict.HIDDEN, allowed=_WORKERS, forbidden=("coordinator",)),
            stage=RfaState.ACTIVE,
        ),
        Row(
            key="read.items.red",
            group=group,
            title="See TLP:RED workspace items",
            via="`GET /engagements/{id}/notes` (tasks, sitreps, review)",
            when="",
            cells=_cells(
                Verdict.HIDDEN,
                allowed=("requester", "participant", "member"),
                forbidden=("requester_analyst", "participant_analyst", "coordinator"),
            ),
            stage=RfaState.ACTIVE,
        ),
    ]


# --- the directory, delivery settings, accounts and tokens --------------------------------------


class _Manager(Enum):
    """Who manages a kind of directory entry (``federation.services._require_edit_rights``)."""

    OPERATOR = "operators"  # admins and secretariat coordinators
    ORGANISATION = "organisation"  # its own liaison officers, and operators
    USER_ADMIN = "user admin"  # admins only


#: Per model the directory service edits: group, plural noun, create function, who manages it.
_DIRECTORY: dict[str, tuple[str, str, str, _Manager]] = {
    "nation": ("Directory", "nations", "create_nation", _Manager.OPERATOR),
    "organisation": ("Directory", "organisations", "create_organisation", _Manager.OPERATOR),
    "pointofcontact": (
        "Directory",
        "points of contact",
        "create_contact",
        _Manager.ORGANISATION,
    ),
    "capability": ("Directory", "capabilities", "create_capability", _Manager.ORGANISATION),
    "user": ("Accounts and tokens", "user accounts", "create_user", _Manager.USER_ADMIN),
}

_OWN_ORG = "their organisation's"


def _manager_cells(manager: _Manager) -> dict[str, Cell]:
    if manager is _Manager.OPERATOR:
        return _cells(Verdict.FORBIDDEN, allowed=("coordinator", "admin"))
    if manager is _Manager.ORGANISATION:
        return _cells(
            Verdict.FORBIDDEN,
            own=_LIAISONS,
            allowed=("coordinator", "admin"),
            notes={"coordinator": "any", "admin": "any"},
        )
    return _cells(Verdict.FORBIDDEN, allowed=("admin",))


def _directory_rows() -> list[Row]:
    from vcisc.federation import services

    rows: list[Row] = []
    reads = "Directory"
    rows += [
        Row(
            key="read.directory",
            group=reads,
            title="See nations and organisations",
            via="`GET /nations`, `GET /organisations`",
            when="",
            cells=_cells(Verdict.ALLOWED),
        ),
        Row(
            key="read.catalogue",
            group=reads,
            title="See points of contact and capabilities",
            via="`GET /contacts`, `GET /capabilities`",
            when="",
            cells=_cells(Verdict.ALLOWED, forbidden=("observer",)),
        ),
    ]
    for model in services._EDITABLE:
        name = model._meta.model_name
        if name not in _DIRECTORY:
            raise MatrixError(
                f"the directory service edits {model.__name__}, which has no rows: "
                "add it to vcisc.permissions._DIRECTORY"
            )
        group, noun, create, manager = _DIRECTORY[name]
        cells = _manager_cells(manager)
        own = _OWN_ORG if manager is _Manager.ORGANISATION else ""
        others = Verdict.FORBIDDEN if own else None
        for verb, fn in (("Create", create), ("Change", "update"), ("Deactivate", "deactivate")):
            rows.append(
                Row(
                    key=f"{name}.{verb.lower()}",
                    group=group,
                    title=f"{verb} {noun}",
                    via=f"`{fn}`",
                    when="",
                    cells=cells,
                    own=own,
                    others=others,
                    covers=_svc("federation", fn),
                )
            )
    return rows


def _delivery_rows() -> list[Row]:
    group = "Notification delivery"
    cells = _cells(Verdict.FORBIDDEN, own=_LIAISONS, allowed=("admin",))
    rows = [
        Row(
            key=f"delivery.{fn}",
            group=group,
            title=title,
            via=f"`{fn}`",
            when="",
            cells=cells,
            own=_OWN_ORG,
            others=Verdict.FORBIDDEN,
            covers=_svc("notify", fn),
        )
        for fn, title in (
            ("update_delivery_settings", "Change an organisation's delivery settings"),
            ("set_contact_key", "Set a point of contact's OpenPGP key"),
            ("remove_contact_key", "Remove a point of contact's OpenPGP key"),
            ("rotate_webhook_secret", "Rotate a point of contact's webhook secret"),
        )
    ]
    rows.append(
        Row(
            key="delivery.replay",
            group=group,
            title="Send dead letters again",
            via="`replay`",
            when="",
            cells=_cells(Verdict.FORBIDDEN, allowed=("admin",)),
            covers=_svc("notify", "replay"),
        )
    )
    return rows


def _feed_rows() -> list[Row]:
    """Federation feeds: read by members and partners, managed by the secretariat."""
    group = "Federation feeds"
    manage = _cells(Verdict.FORBIDDEN, allowed=("coordinator", "admin"))
    # An observer finds no feed at all (404), as for a missing id.
    manage_one = _cells(Verdict.FORBIDDEN, allowed=("coordinator", "admin"), hidden=("observer",))
    return [
        Row(
            key="read.feeds",
            group=group,
            title="See the federation feeds and their indicators",
            via="`GET /feeds`, `GET /feeds/{id}/indicators`",
            when="",
            cells=_cells(Verdict.ALLOWED, forbidden=("observer",)),
        ),
        Row(
            key="feed.create",
            group=group,
            title="Add a feed",
            via="`create_feed`",
            when="",
            cells=manage,
            covers=_svc("feeds", "create_feed"),
        ),
        Row(
            key="feed.update",
            group=group,
            title="Enable, disable or schedule a feed",
            via="`update_feed`",
            when="",
            cells=manage_one,
            covers=_svc("feeds", "update_feed"),
        ),
        Row(
            key="feed.import",
            group=group,
            title="Pull a feed from its URL, or upload its files",
            via="`pull_feed`, `import_feed_content`",
            when="",
            cells=manage_one,
            covers=_svc("feeds", "pull_feed", "import_feed_content"),
        ),
    ]


def _account_rows() -> list[Row]:
    group = "Accounts and tokens"
    all_but_admin = tuple(k for k in _KEYS if k != "admin")
    return [
        Row(
            key="read.users",
            group=group,
            title="See user accounts",
            via="`GET /users`",
            when="",
            cells=_cells(Verdict.OWN, allowed=("coordinator", "admin")),
            own="their organisation's",
        ),
        Row(
            key="read.tokens",
            group=group,
            title="See API tokens",
            via="`GET /tokens`",
            when="",
            cells=_cells(Verdict.OWN, allowed=("admin",)),
            own="their own",
        ),
        Row(
            key="token.create",
            group=group,
            title="Issue an API token",
            via="`create_token`",
            when="",
            cells=_cells(Verdict.ALLOWED, own=all_but_admin, notes={"admin": "for anyone"}),
            own="for themselves",
            others=Verdict.FORBIDDEN,
            covers=_svc("federation", "create_token"),
        ),
        Row(
            key="token.revoke",
            group=group,
            title="Revoke an API token",
            via="`revoke_token`",
            when="",
            cells=_cells(Verdict.ALLOWED, own=all_but_admin, notes={"admin": "anyone's"}),
            own="their own",
            others=Verdict.HIDDEN,
            covers=_svc("federation", "revoke_token"),
        ),
    ]


# --- the matrix ---------------------------------------------------------------------------------

#: Service functions that take an acting user but are no action of their own, and why.
NOT_ACTIONS = {
    "vcisc.assistance.services.record_timeline": "a step inside the write path's transactions",
    "vcisc.engagements.services.add_participant": "a step of accepting an offer",
    "vcisc.engagements.services.close_engagement": "a step of closing or withdrawing",
    "vcisc.engagements.indicators.add_indicators": (
        "the write path add_indicator and import_indicators share"
    ),
}

#: The modules of a package that hold write paths acting for a user.
WRITE_PATH_MODULES = ("services", "indicators")


@cache
def matrix() -> Matrix:
    """The whole matrix, built from the code and the declarations above."""
    rows = (
        _request_rows()
        + _offer_rows()
        + _engagement_rows()
        + _read_rows()
        + _directory_rows()
        + _delivery_rows()
        + _feed_rows()
        + _account_rows()
    )
    # Order the groups as a reader meets them: the directory and accounts after the story.
    order = [
        "Requests for assistance",
        "Offers",
        "Engagement workspace",
        "Reading requests, offers and engagements",
        "Directory",
        "Notification delivery",
        "Federation feeds",
        "Accounts and tokens",
    ]
    rows.sort(key=lambda r: order.index(r.group))
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        raise MatrixError("two rows share a key")
    return Matrix(tuple(rows))


def user_actions() -> dict[str, object]:
    """Every public service function that acts for a user (it takes an ``actor``), by
    ``module.function``, over every ``vcisc.<package>.services`` (and ``.indicators``) module."""
    import vcisc

    found: dict[str, object] = {}
    for info in pkgutil.iter_modules(vcisc.__path__):
        if not info.ispkg:
            continue
        for part in WRITE_PATH_MODULES:
            name = f"vcisc.{info.name}.{part}"
            if importlib.util.find_spec(name) is None:
                continue
            module = importlib.import_module(name)
            for fn_name in getattr(module, "__all__", ()):
                fn = getattr(module, fn_name)
                if inspect.isfunction(fn) and "actor" in inspect.signature(fn).parameters:
                    found[f"{name}.{fn_name}"] = fn
    return found


# --- the document -------------------------------------------------------------------------------

_INTRO = """\
Who may do what in VCISC: every action a user can take, and the reads that need-to-know turns
on, against one user in each relationship to a request. The rules themselves live in
[`authz.py`](../src/vcisc/authz.py) and the services' write path; this table is generated from
[`src/vcisc/permissions.py`](../src/vcisc/permissions.py), which reads the lifecycle, the
services' constants and the directory's editable models, and
[`tests/integration/test_permissions.py`](../tests/integration/test_permissions.py) performs
every cell as that user and fails when the code and the table disagree.

Regenerate after changing a rule: `python -m vcisc.permissions > docs/permissions.md`."""

_LEGEND = (
    (Verdict.ALLOWED, "allowed (for reads: shown in full)"),
    (
        Verdict.OWN,
        "allowed on their own object only (the *when* column says what is theirs, and what they "
        "get on anyone else's)",
    ),
    (
        Verdict.FORBIDDEN,
        "refused with 403: they know the object exists but may not do this; for reads: not "
        "shown, or only the request's metadata",
    ),
    (Verdict.CONFLICT, "refused for the state of things (the note says which)"),
    (
        Verdict.HIDDEN,
        "404: the object looks absent, exactly as one that does not exist; they do not learn "
        "that it exists",
    ),
)

_JUDGED = """\
A row is judged with the request at the point of its story where the action applies; a persona
whose organisation is not yet involved then (a routed organisation before routing, the
secretariat before submission) gets —. The console and the API call the same services, so a
cell holds for both. The server console (`vcisc` with database access) acts as a trusted
operator and is not a column; nor is `vcisc expire-overdue`, which expires requests for
nobody in particular."""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render(m: Matrix | None = None) -> str:
    """The matrix as the Markdown of ``docs/permissions.md``."""
    m = m or matrix()
    out = [
        "# Permission matrix",
        "",
        "<!-- Generated by `python -m vcisc.permissions > docs/permissions.md`. Do not edit. -->",
        "",
        _INTRO,
        "",
        "## Columns",
        "",
        "| column | who |",
        "|---|---|",
    ]
    out += [f"| {p.title} | {_md(p.who)} |" for p in PERSONAS]
    out += ["", "## Cells", "", "| cell | meaning |", "|---|---|"]
    out += [f"| {_SYMBOL[verdict]} | {meaning} |" for verdict, meaning in _LEGEND]
    out += ["", _JUDGED]
    header = "| action | via | when | " + " | ".join(p.title for p in PERSONAS) + " |"
    rule = "|---|---|---|" + "---|" * len(PERSONAS)
    for group, rows in m.groups():
        out += ["", f"## {group}", "", header, rule]
        for row in rows:
            cells = " | ".join(_md(row.cell(p.key).text()) for p in PERSONAS)
            out.append(f"| {_md(row.title)} | {_md(row.via)} | {_md(row.condition())} | {cells} |")
    return "\n".join(out) + "\n"


def main() -> None:
    """``python -m vcisc.permissions``: print docs/permissions.md."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vcisc.settings")
    import django

    django.setup()
    print(render(), end="")


if __name__ == "__main__":
    main()
