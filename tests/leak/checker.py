"""Acting as every generated user in turn, request the discovered routes and look for leaks.

A *probe* is one GET of one route with its path parameters filled (ids of the scenario's objects,
of every category relative to the acting user — readable, metadata only, hidden — and an id that
does not exist) and, for API list operations, sometimes a filter drawn from the operation's
schema (following pagination to the end). The response — status, headers and body — is checked:

* **canaries**: every ``qz…`` token in it must belong to something the oracle lets the user see
  (request content or metadata, reasons, offers, workspace items, organisation names, people);
  passwords and API tokens never appear;
* **identifiers**: request references, ``/requests/<id>/``, ``/engagements/<id>/`` and
  ``/offers/<id>/`` links, and JSON fields naming requests, engagements, offers, organisations,
  users and nations must point at what the user may know of;
* **404 for the hidden**: an id the user may not see answers exactly as an id that does not
  exist (same status, same headers, same body but for the id itself);
* **counts**: a paginated list's ``count`` equals the items it really pages through, and without
  a filter the requests and engagements listed are exactly those the oracle expects (which also
  keeps the oracle honest: a suite whose oracle hid everything could not fail);
* **agreement**: a request's ``access`` and an engagement's ``access`` are what the oracle says.

After the probes: every outbox message is checked against what its recipient organisation may
see, and every log record against RED/AMBER content, passwords, tokens and session keys.

In the default profile each user makes a few probes per scenario, drawn at random with a bias
to the interesting ids; over hundreds of scenarios every route meets every kind of user and
object. ``probes="all"`` (the exhaustive profile) makes every user request every route with
every id.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.apps import apps
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import HttpResponseBase
from django.test import Client
from django.test.client import ClientHandler

from tests.leak.build import MISSING_CODE, Built
from tests.leak.routes import Route
from tests.leak.world import NOT_FOR_LOGS, Kind, Person, View, World
from vcisc.engagements.exports import misp_event_uuid

__all__ = ["MISSING_ID", "MISSING_UUID", "Checker", "Finding", "missing_id", "post_only_routes"]

#: An id no object has (the same for every kind).
MISSING_ID = 2_147_483_647
#: Request-domain objects are keyed by UUIDs (vcisc.ids): their missing ids are UUIDs too, so
#: that "missing" and "hidden" go through the same route converter and the same lookup.
MISSING_UUID = UUID("7fffffff-ffff-7fff-bfff-ffffffffffff")
UUID_KINDS = frozenset({"rfa", "offer", "engagement", "task", "misp_event", "collection"})


def _uuid(value: Any) -> UUID | None:
    """A request-domain id as the API writes it (a UUID string), or None for anything else."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def missing_id(kind: str, *, other: bool = False) -> Any:
    """An id of ``kind`` that names no object (``other``: a second such id, distinct)."""
    if kind == "nation":
        return MISSING_CODE
    uuid_keyed = kind in UUID_KINDS
    if kind.startswith("model:"):
        app, model = kind.removeprefix("model:").split(".")
        uuid_keyed = apps.get_model(app, model)._meta.pk.get_internal_type() == "UUIDField"
    if uuid_keyed:
        return UUID(int=MISSING_UUID.int - 1) if other else MISSING_UUID
    if kind == "token" and not other:
        return "zzzzzzzzzzzz"
    return MISSING_ID - 1 if other else MISSING_ID


TOKEN_RE = re.compile(r"qz[a-z0-9]{10}")
REFERENCE_RE = re.compile(r"RFA-\d{4}-[0-9A-Z]{6}")
#: Request-domain ids (UUIDs), wherever they stand: in a link, a JSON value, a header, a message.
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CSRF_RE = re.compile(r'(?<=name="csrfmiddlewaretoken" value=")[^"]+')
#: How often each surface is drawn when a probe starts from a surface (see :meth:`plan`): the
#: admin holds no request content by design and the API's own documents are static.
SURFACE_WEIGHTS = {"api": 0.5, "page": 0.4, "admin": 0.06, "other": 0.04}
#: Kinds of object whose ids only some users may know of.
SCOPED = frozenset({"rfa", "offer", "engagement", "task", "user", "collection"})
#: Headers that differ between two identical answers (time, length of a number in the body).
VOLATILE_HEADERS = frozenset({"content-length", "expires", "date", "set-cookie"})
_LOG_KINDS = frozenset(
    {Kind.RFA_CONTENT, Kind.RFA_META, Kind.REASON, Kind.OFFER_TEXT, Kind.ITEM, Kind.SHARED_VALUE}
)


_HANDLER: list[ClientHandler] = []


def new_client() -> Client:
    """A test client sharing one request handler with every other: a new handler loads the
    middleware again, and WhiteNoise's scan of the static files alone takes ~50 ms."""
    made = Client(raise_request_exception=False)
    if not _HANDLER:
        _HANDLER.append(made.handler)
    made.handler = _HANDLER[0]
    return made


@dataclass(frozen=True)
class Finding:
    who: str
    where: str
    problem: str

    def __str__(self) -> str:
        return f"- as {self.who}, {self.where}:\n    {self.problem}"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str
    content_type: str

    @property
    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.headers) + "\n\n" + self.body

    def json(self) -> Any:
        if "json" not in self.content_type:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Checker:
    """Runs the probes of one scenario and collects findings (nothing is raised mid-way)."""

    def __init__(
        self,
        built: Built,
        routes: list[Route],
        *,
        probes: float | str,
        stats: Counter[str],
        post_only: frozenset[str] = frozenset(),
        only: list[int] | None = None,
    ) -> None:
        self.built = built
        self.world: World = built.world
        self.routes = routes
        self.probes = probes
        self.stats = stats
        self.post_only = post_only
        self.only = only
        self.rng = random.Random(built.rng.random())
        self.findings: list[Finding] = []
        self.api = new_client()
        self.web: dict[int | None, Client] = {}
        self.views: dict[int | None, View] = {}
        self.missing: dict[tuple[str, int | None, str], Answer] = {}
        self.ids = self._ids()
        self.secrets_text = [*built.api_tokens.values(), *built.passwords.values()]
        self.signed_in: list[Client] = []

    # --- who acts -------------------------------------------------------------------------------

    def actors(self) -> list[Person | None]:
        """Every generated user in turn, and an anonymous visitor (or only ``only``)."""
        if self.only is not None:
            return [self.world.people[pk] for pk in self.only]
        return [*self.world.people.values(), None]

    def view(self, person: Person | None) -> View:
        key = person.id if person else None
        if key not in self.views:
            self.views[key] = View(self.world, person)
        return self.views[key]

    def who(self, person: Person | None) -> str:
        if person is None:
            return "an anonymous visitor"
        org = self.world.orgs.get(person.org_id) if person.org_id else None
        roles = ",".join(sorted(person.roles)) or "no role"
        state = "" if person.active else ", deactivated"
        return f"user #{person.id} ({person.label}; {org.name if org else '-'}; {roles}{state})"

    def web_client(self, person: Person | None) -> Client:
        key = person.id if person else None
        if key not in self.web:
            client = new_client()
            if person is not None:
                client.force_login(self.built.users[person.id])
            self.web[key] = client
        return self.web[key]

    # --- ids to fill path parameters with -------------------------------------------------------

    def _ids(self) -> dict[str, list[Any]]:
        w = self.world
        ids: dict[str, list[Any]] = {
            "rfa": sorted(w.rfas),
            "offer": sorted(w.offers),
            "engagement": sorted(w.engagements),
            "task": sorted(w.task_ids),
            "organisation": sorted(w.orgs),
            "contact": sorted(w.contacts),
            "capability": sorted(w.capabilities),
            "user": sorted(w.people),
            "nation": sorted(w.nations),
            "token": sorted(w.tokens),
            "misp_event": sorted(str(misp_event_uuid(e)) for e in w.engagements),
            # TAXII: engagements' collections, and the federation collections posted to.
            "collection": sorted([*w.engagements, *w.collections]),
        }
        return ids

    def model_ids(self, kind: str) -> list[Any]:
        """Ids of an admin page's model (``model:app.model``), a few of them."""
        if kind not in self.ids:
            from django.apps import apps

            app, model = kind.removeprefix("model:").split(".")
            cls = apps.get_model(app, model)
            self.ids[kind] = list(cls._default_manager.order_by("pk").values_list("pk", flat=True))
        return self.ids[kind]

    def hidden(self, view: View, kind: str, value: Any) -> bool | None:
        """Whether the object is one the viewer may not learn of (None: not a scoped kind)."""
        w = self.world
        if kind == "rfa" and value in w.rfas:
            return not view.involved(w.rfas[value])
        if kind == "engagement" and value in w.engagements:
            return not view.sees_engagement(w.engagements[value])
        if kind == "offer" and value in w.offers:
            return not view.knows_offer_id(w.offers[value])
        if kind == "user" and value in w.people:
            return value not in view.known_people
        if kind == "misp_event":
            for eng_id, eng in w.engagements.items():
                if str(misp_event_uuid(eng_id)) == value:
                    return not view.sees_engagement(eng)
        if kind == "collection" and value in w.engagements:
            return not view.participates(w.engagements[value])  # content access: its items
        if kind == "collection" and value in w.collections:
            return not view.federation_reader
        return None

    def values(self, view: View, route: Route, name: str, kind: str) -> list[list[Any]]:
        """Candidate values for one parameter, grouped in categories (visible, hidden, …)."""
        if kind == "choice":
            return [list(dict(route.choices)[name])]
        if kind.startswith("model:"):
            found = self.model_ids(kind)
            missing = missing_id(kind)
            return [found[:3], found[-3:], [missing]] if found else [[missing]]
        found = self.ids.get(kind, [])
        groups: dict[str, list[Any]] = {"missing": [missing_id(kind)]}
        for value in found:
            if kind == "rfa":
                category = view.access(self.world.rfas[value])
            else:
                h = self.hidden(view, kind, value)
                category = "any" if h is None else ("hidden" if h else "visible")
            groups.setdefault(category, []).append(value)
        return list(groups.values())

    # --- choosing probes ------------------------------------------------------------------------

    def plan(self, person: Person | None, count: int = 0) -> list[tuple[Route, dict[str, Any]]]:
        """``count`` probes drawn for ``person`` (every route with every id, exhaustive)."""
        view = self.view(person)
        if self.probes == "all":
            chosen: list[tuple[Route, dict[str, Any]]] = []
            for route in self.routes:
                combos: list[dict[str, Any]] = [{}]
                for name, kind in route.params:
                    flat = [v for group in self.values(view, route, name, kind) for v in group]
                    combos = [{**c, name: v} for c in combos for v in flat]
                chosen += [(route, args) for args in combos]
            return chosen
        by_surface: dict[str, list[Route]] = {}
        for route in self.routes:
            by_surface.setdefault(route.surface, []).append(route)
        surfaces = sorted(by_surface)
        weights = [SURFACE_WEIGHTS.get(s, 0.1) for s in surfaces]
        # A third of the probes start from an object of the scenario — a request, offer,
        # engagement or task, whichever kinds it has — and take a route about that kind of
        # object; a third take an overview (a route without parameters that shows requests: the
        # lists, home page, metrics, events — one answer covers every request at once); a third
        # start from a surface (anything: directory, admin, documents, forms…).
        by_kind: dict[str, list[Route]] = {}
        for route in self.routes:
            for _, kind in route.params:
                if kind in SCOPED and kind != "user" and self.ids.get(kind):
                    by_kind.setdefault(kind, []).append(route)
        kinds = sorted(by_kind)
        overviews = [
            r
            for r in self.routes
            if not r.params
            and not r.names_public
            and r.label not in self.post_only
            and r.surface in ("api", "page")
        ]
        chosen = []
        for _ in range(count):
            pick = self.rng.random()
            if kinds and pick < 1 / 3:
                candidates = by_kind[self.rng.choice(kinds)]
            elif overviews and pick < 2 / 3:
                candidates = overviews
            else:
                candidates = by_surface[self.rng.choices(surfaces, weights)[0]]
            route = self.rng.choices(candidates, [self.weight(r) for r in candidates])[0]
            args = {}
            for name, kind in route.params:
                groups = [g for g in self.values(view, route, name, kind) if g]
                args[name] = self.rng.choice(self.rng.choice(groups))
            chosen.append((route, args))
        return chosen

    def weight(self, route: Route) -> float:
        """How often a route is drawn within its surface: pages that only take forms and the
        directory (which holds nothing of a request) less often than the rest."""
        if route.label in self.post_only:
            return 0.15 * route.weight
        if route.names_public and not any(kind in SCOPED for _, kind in route.params):
            return 0.3 * route.weight
        return route.weight

    def filters(self, route: Route) -> dict[str, str]:
        """Sometimes a filter or two, drawn from the operation's schema; often none."""
        if not route.filters or self.rng.random() < 0.5:
            return {}
        picked = self.rng.sample(route.filters, min(len(route.filters), self.rng.randint(1, 2)))
        query: dict[str, str] = {}
        for f in picked:
            if f.enum:
                value = self.rng.choice(f.enum)
            elif f.type == "boolean":
                value = self.rng.choice(["true", "false"])
            elif f.type == "integer":
                lo = f.minimum if f.minimum is not None else 0
                pool = [lo, lo + 1, *self.ids["organisation"]]
                value = str(min(self.rng.choice(pool), f.maximum or 2**31))
            else:
                pool = [
                    *self.world.nations,
                    "en",
                    "energy",
                    "health",
                    *self.rng.sample(sorted(self.world.secrets), 2),
                    *map(str, self.ids["rfa"]),
                ]
                value = self.rng.choice(pool)[: f.max_length or 100]
            query[f.name] = value
        return query

    # --- running --------------------------------------------------------------------------------

    def budget(self) -> dict[int | None, int]:
        """Probes per actor: ``probes`` each on average, at least one each, the rest shared in
        proportion to how many requests each may see (a user who sees nothing has less to
        leak, a coordinator sees every submitted request)."""
        actors = self.actors()
        assert not isinstance(self.probes, str)
        weight = {
            (p.id if p else None): sum(self.view(p).involved(r) for r in self.world.rfas.values())
            for p in actors
        }
        spare = max(0, round((self.probes - 1) * len(actors)))
        total = sum(weight.values()) or 1
        share = {key: 1 + spare * w // total for key, w in weight.items()}
        for key in sorted(weight, key=lambda k: (-weight[k], str(k)))[
            : spare - sum(share.values()) + len(actors)
        ]:
            share[key] += 1  # what the rounding left, to the most involved
        return share

    def run(self) -> None:
        share = self.budget() if self.probes != "all" else {}
        for person in self.actors():
            for route, args in self.plan(person, share.get(person.id if person else None, 0)):
                query = dict(route.query) | (self.filters(route) if route.surface == "api" else {})
                self.probe(person, route, args, query)

    def call(
        self, person: Person | None, route: Route, args: dict[str, Any], query: dict[str, str]
    ) -> Answer | None:
        url = route.url(args)
        if route.surface == "api":
            extra = {}
            if person is not None:
                extra["HTTP_AUTHORIZATION"] = f"Bearer {self.built.api_tokens[person.id]}"
            response = self.api.get(url, query, **extra)
        else:
            client = self.web_client(person)
            response = client.get(url, query)
            pending = client.cookies.get("messages")
            if pending is not None and pending.value:
                self.flush_messages(person, client, response)
        self.stats[f"status {response.status_code}"] += 1
        if route.label == "taxii:objects" and person is not None:
            self.fast_agrees(person, url, query)
        return self.answer(person, route, url, response)

    def fast_agrees(self, person: Person, url: str, query: dict[str, str]) -> None:
        """TAXII's fast reads (vcisc.sharing.taxii.fast) with the person's API token, deciding
        and then from their cache, answer nothing but what Django's path answers that token:
        the same 200, byte for byte."""
        from urllib.parse import urlencode

        from vcisc.sharing.taxii import fast

        token = self.built.api_tokens[person.id]
        response = self.api.get(url, query, HTTP_AUTHORIZATION=f"Bearer {token}")
        headers = {"host": "testserver", "authorization": f"Bearer {token}"}
        for attempt in ("deciding", "cached"):
            got = fast.answer(url, urlencode(query), headers)
            self.stats[f"taxii fast read {'answered' if got else 'declined'}"] += 1
            if got is None:
                continue  # Django's path answers (also when Django's answer was a 200)
            content = response.content  # type: ignore[attr-defined]
            if response.status_code != 200:
                problem = f"answered 200 where Django's path answered {response.status_code}"
            elif got.body != content or got.headers != dict(response.headers):
                problem = "answered other bytes or headers than Django's path"
            else:
                continue
            self.add(person, f"GET {url} (TAXII fast read, {attempt})", problem)

    def flush_messages(
        self, person: Person | None, client: Client, response: HttpResponseBase
    ) -> None:
        """The page left a message for the next page (before a redirect): read that page now —
        its message is checked like any text — so that it does not turn up in the next probe."""
        target = response.headers.get("Location") or "/"
        follow = client.get(target, follow=True)
        self.stats["messages followed"] += 1
        answer = self.answer(person, Route("page", "(next page)", target), target, follow)
        if answer is not None:
            view = self.view(person)
            self.inspect(view, person, Route("page", target, target), f"GET {target}", answer)

    def answer(
        self, person: Person | None, route: Route, url: str, response: HttpResponseBase
    ) -> Answer | None:
        if getattr(response, "streaming", False):
            if not route.streams:
                _close(response)
                self.findings.append(
                    Finding(
                        self.who(person),
                        f"GET {url}",
                        f"{route.label} answers with a stream; describe in DESCRIBED "
                        f"(tests/leak/routes.py) how to make it finite",
                    )
                )
                return None
            body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        else:
            body = response.content  # type: ignore[attr-defined]
        return Answer(
            response.status_code,
            list(response.headers.items()),
            body.decode("utf-8", "replace"),
            response.headers.get("Content-Type", ""),
        )

    def probe(
        self, person: Person | None, route: Route, args: dict[str, Any], query: dict[str, str]
    ) -> None:
        view = self.view(person)
        answer = self.call(person, route, args, query)
        if answer is None:
            return
        where = f"GET {route.url(args)}" + (f"?{_qs(query)}" if query else "")
        self.stats[f"probe {route.surface}"] += 1
        self.inspect(view, person, route, where, answer, asked=args)
        if answer.status >= 500:
            self.add(person, where, f"server error {answer.status}: the answer cannot be judged")
        data = answer.json()
        if isinstance(data, dict) and "items" in data and "count" in data:
            self.paginate(view, person, route, args, query, data)
        elif route.surface == "api" and not query and not route.params and answer.status == 200:
            self.completeness(view, person, where, data)
        for name, kind in route.params:
            if self.hidden(view, kind, args[name]):
                self.stats[f"hidden {kind}"] += 1
                self.same_as_missing(person, route, args, query, name, kind, answer, where)

    def add(self, person: Person | None, where: str, problem: str) -> None:
        self.findings.append(Finding(self.who(person), where, problem))

    # --- the checks on one answer -----------------------------------------------------------

    def inspect(
        self,
        view: View,
        person: Person | None,
        route: Route,
        where: str,
        answer: Answer,
        *,
        asked: dict[str, Any] | None = None,
    ) -> None:
        text = answer.text
        for problem in self.leaks_in(view, text, names_public=route.names_public, asked=asked):
            self.add(person, where, problem)
        data = answer.json()
        if data is not None:
            for problem in self.json_leaks(view, data, names_public=route.names_public):
                self.add(person, where, problem)
        for secret in self.secrets_text:
            if secret in text:
                self.add(person, where, "a password or an API token is in the answer")

    def leaks_in(
        self,
        view: View,
        text: str,
        *,
        names_public: bool = False,
        asked: dict[str, Any] | None = None,
    ) -> Iterable[str]:
        w = self.world
        for token in set(TOKEN_RE.findall(text)):
            secret = w.secrets.get(token)
            if secret is None:
                continue
            self.stats[f"seen {secret.kind.name}"] += 1
            if not view.may_see(secret, names_public=names_public):
                yield f"shows {token}: {view.why_not(secret)}, which it may not see"
        for ref in set(REFERENCE_RE.findall(text)):
            rfa = w.by_reference.get(ref)
            if rfa is not None and not view.involved(rfa):
                yield f"names {ref} (request #{rfa.id}), a request it is not involved in"
        asked_ids = {str(v) for v in (asked or {}).values()}
        for raw in set(UUID_RE.findall(text)):
            if raw in asked_ids:
                continue  # the address the user typed, echoed back
            pk = UUID(raw)
            for what in ("requests", "engagements", "offers", "indicators"):
                problem = self.unknown_id(view, what, pk)
                if problem:
                    yield f"shows the id {raw}: {problem}"

    def unknown_id(self, view: View, what: str, pk: UUID) -> str | None:
        w = self.world
        if what == "requests" and pk in w.rfas and not view.involved(w.rfas[pk]):
            return "a request it is not involved in"
        if what == "engagements" and pk in w.engagements:
            return (
                None
                if view.sees_engagement(w.engagements[pk])
                else "an engagement it takes no part in"
            )
        if what == "offers" and pk in w.offers and not view.knows_offer_id(w.offers[pk]):
            return "an offer it may not see"
        if what == "indicators" and pk in w.indicators:
            item = w.items[w.indicators[pk]]
            return None if view.sees_item(item) else "an indicator it may not see"
        return None

    def json_leaks(self, view: View, data: Any, *, names_public: bool) -> Iterable[str]:
        w = self.world
        for key, value in _walk(data):
            if not isinstance(value, int | str | list) or isinstance(value, bool):
                continue
            if key == "rfa_id" and (pk := _uuid(value)) in w.rfas:
                if not view.involved(w.rfas[pk]):
                    yield f'"rfa_id": {value}, a request it is not involved in'
            elif key == "engagement_id" and (pk := _uuid(value)) is not None:
                problem = self.unknown_id(view, "engagements", pk)
                if problem:
                    yield f'"engagement_id": {value}, {problem}'
            elif key == "offer_id" and (pk := _uuid(value)) is not None:
                problem = self.unknown_id(view, "offers", pk)
                if problem:
                    yield f'"offer_id": {value}, {problem}'
            elif key == "user_id" and isinstance(value, int) and value in w.people:
                if value not in view.known_people:
                    yield f'"user_id": {value}, a person it does not know of'
            elif names_public:
                continue
            elif key in ("organisation_id", "assignee_id") and isinstance(value, int):
                if value in w.orgs and value not in view.known_orgs:
                    yield f'"{key}": {value} ({w.orgs[value].name}), not known to be involved'
            elif key == "excluded_organisations" and isinstance(value, list):
                for pk in value:
                    if pk in w.orgs and pk not in view.known_orgs:
                        yield f'"excluded_organisations" names #{pk}, which it may not know of'
            elif (
                key in ("nation", "requester_nation")
                and isinstance(value, str)
                and value in w.nations
                and value not in view.known_nations
            ):
                yield f'"{key}": "{value}", a nation not known to be involved'
        for obj in _objects(data):
            if {"reference", "access", "involvement"} <= obj.keys() and isinstance(
                obj["reference"], str
            ):
                rfa = w.by_reference.get(obj["reference"])
                if rfa is not None and view.involved(rfa) and obj["access"] != view.access(rfa):
                    yield (
                        f'{rfa.reference} shown with access "{obj["access"]}"; the oracle says '
                        f'"{view.access(rfa)}" (a leak, or the oracle is wrong)'
                    )
            if {"participants", "opened_at", "rfa_id", "access"} <= obj.keys() and (
                (pk := _uuid(obj["rfa_id"])) is not None
            ):
                rfa = w.rfas.get(pk)
                if rfa is not None and view.sees_engagement(rfa):
                    expected = "content" if view.participates(rfa) else "metadata"
                    if obj["access"] != expected:
                        yield (
                            f"engagement of {rfa.reference} shown with access "
                            f'"{obj["access"]}"; the oracle says "{expected}"'
                        )

    # --- lists, counts, completeness -----------------------------------------------------------

    def paginate(
        self,
        view: View,
        person: Person | None,
        route: Route,
        args: dict[str, Any],
        query: dict[str, str],
        first: dict[str, Any],
    ) -> None:
        items = list(first["items"])
        count = first["count"]
        start = int(query.get("offset", "0"))
        reachable = max(0, count - start)
        step = len(items)
        while step and len(items) < reachable and len(items) < 1000:
            q = dict(query) | {"offset": str(start + len(items))}
            if "limit" in query:
                q["limit"] = query["limit"]
            answer = self.call(person, route, args, q)
            if answer is None or not isinstance(page := answer.json(), dict):
                return
            where = f"GET {route.url(args)}?{_qs(q)}"
            self.stats["pages followed"] += 1
            self.inspect(view, person, route, where, answer, asked=args)
            step = len(page.get("items", []))
            items += page.get("items", [])
        where = f"GET {route.url(args)}" + (f"?{_qs(query)}" if query else "")
        if reachable != len(items):
            self.add(
                person,
                where,
                f"count is {count} but the pages from offset {start} hold {len(items)} items",
            )
        if not query.keys() - {"limit", "offset"} and start == 0 and not route.params:
            self.completeness(view, person, where, items)

    def completeness(self, view: View, person: Person | None, where: str, data: Any) -> None:
        """Unfiltered lists of requests or engagements hold exactly what the oracle expects."""
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list) or (not data and not self._listish(where)):
            return
        w = self.world
        if all(isinstance(o, dict) and {"reference", "access"} <= o.keys() for o in data) and (
            "/requests" in where
        ):
            got = {o["reference"] for o in data}
            want = {r.reference for r in w.rfas.values() if view.involved(r)}
            self.stats["request lists compared"] += 1
            if got != want:
                self.add(
                    person,
                    where,
                    f"lists {sorted(got)}; the oracle expects {sorted(want)} "
                    f"(extra: {sorted(got - want)}, missing: {sorted(want - got)})",
                )
        elif all(isinstance(o, dict) and "participants" in o for o in data) and (
            "/engagements" in where
        ):
            got_ids = {_uuid(o["id"]) for o in data}
            want_ids = {r.engagement_id for r in w.rfas.values() if view.sees_engagement(r)}
            self.stats["engagement lists compared"] += 1
            if got_ids != want_ids:
                self.add(
                    person,
                    where,
                    f"lists engagements {sorted(map(str, got_ids))}; the oracle expects "
                    f"{sorted(i for i in want_ids if i is not None)}",
                )

    @staticmethod
    def _listish(where: str) -> bool:
        """An empty answer has no shape: only the two scoped lists are compared when empty."""
        return where.split("?")[0] in ("GET /api/v1/requests", "GET /api/v1/engagements")

    # --- 404 for the hidden ---------------------------------------------------------------------

    def same_as_missing(
        self,
        person: Person | None,
        route: Route,
        args: dict[str, Any],
        query: dict[str, str],
        name: str,
        kind: str,
        answer: Answer,
        where: str,
    ) -> None:
        # Not the first missing id: another parameter of the same route may hold that already.
        missing_value = missing_id(kind, other=True)
        key = (route.label, person.id if person else None, _qs(query) + repr(sorted(args.items())))
        if key not in self.missing:
            found = self.call(person, route, {**args, name: missing_value}, query)
            if found is None:
                return
            self.missing[key] = found
        missing = self.missing[key]
        # Both ids are blanked in both answers: another parameter may hold the same number.
        ids = (str(args[name]), str(missing_value))
        mine, theirs = _blank(answer.body, *ids), _blank(missing.body, *ids)
        problems = []
        if answer.status != missing.status:
            problems.append(f"status {answer.status}, not {missing.status} as for a missing id")
        elif mine != theirs:
            problems.append(f"body differs from a missing id's: {_diff(mine, theirs)}")
        headers = {
            (k.lower(), _blank(v, *ids))
            for k, v in answer.headers
            if k.lower() not in VOLATILE_HEADERS
        }
        others = {
            (k.lower(), _blank(v, *ids))
            for k, v in missing.headers
            if k.lower() not in VOLATILE_HEADERS
        }
        if headers != others:
            problems.append(f"headers differ: {sorted(headers ^ others)}")
        self.stats["hidden ids compared"] += 1
        for problem in problems:
            self.add(
                person,
                where,
                f"{kind} #{args[name]} is hidden from this user but answers unlike a missing "
                f"one: {problem}",
            )

    # --- sign-in and bad tokens: secrets that must not reach logs or pages --------------------

    def sign_in(self) -> list[str]:
        """One user signs in on the console with a wrong, then the right password; a bad and a
        malformed API token are tried. Returns the extra secrets for the log check."""
        extra: list[str] = []
        for uid, password in self.built.passwords.items():
            person = self.world.people[uid]
            wrong = password[:-1] + "8"
            extra.append(wrong)
            client = new_client()
            for attempt in (wrong, password):
                response = client.post("/login/", {"username": person.email, "password": attempt})
                if attempt in response.content.decode("utf-8", "replace"):
                    self.add(person, "POST /login/", "the password is echoed in the page")
            self.stats[f"sign-in status {response.status_code}"] += 1
            self.signed_in.append(client)  # not reused: it may hold a flash message
        some = next(iter(self.built.api_tokens.values()), None)
        if some is not None:
            bad = some[:-6] + "AAAAAA"
            extra.append(bad)
            for token in (bad, "not-a-token-qzsecret"):
                response = self.api.get("/api/v1/requests", HTTP_AUTHORIZATION=f"Bearer {token}")
                if response.status_code != 401:
                    self.add(
                        None, "GET /api/v1/requests", f"a bad token got {response.status_code}"
                    )
        return extra

    # --- notifications and logs -----------------------------------------------------------------

    def check_outbox(self) -> None:
        from vcisc.notify.models import OutboxMessage

        for msg in OutboxMessage.objects.all():
            org = self.world.orgs.get(msg.organisation_id)
            if org is None:
                continue
            desk = Person(
                id=-1,
                email="",
                org_id=org.id,
                roles=frozenset({"coordinator"} if org.secretariat else {"liaison", "analyst"}),
                label=f"points of contact of {org.name}",
            )
            view = View(self.world, desk)
            text = f"{msg.subject}\n{msg.body}\n{json.dumps(msg.payload)}"
            where = f"notification {msg.kind} #{msg.pk} to {org.name}"
            self.stats["notifications checked"] += 1
            for problem in self.leaks_in(view, text):
                self.findings.append(Finding(desk.label, where, problem))
            for problem in self.json_leaks(view, msg.payload, names_public=False):
                self.findings.append(Finding(desk.label, where, problem))

    def check_logs(self, lines: list[str], extra_secrets: list[str]) -> None:
        secrets = [*self.secrets_text, *extra_secrets]
        clients = [*self.web.values(), *self.signed_in]
        secrets += [c.cookies["sessionid"].value for c in clients if "sessionid" in c.cookies]
        self.stats["log records"] += len(lines)
        for line in lines:
            for token in set(TOKEN_RE.findall(line)):
                secret = self.world.secrets.get(token)
                if secret is None:
                    continue
                if secret.kind is Kind.SECRET or (
                    secret.kind in _LOG_KINDS and secret.tlp in NOT_FOR_LOGS and not secret.in_feed
                ):
                    self.findings.append(
                        Finding(
                            "the logs",
                            _clip(line),
                            f"holds {token}: {secret.kind.value} ({secret.what}), "
                            f"TLP:{secret.tlp.upper()}",
                        )
                    )
            for secret_text in secrets:
                if secret_text and secret_text in line:
                    self.findings.append(
                        Finding("the logs", _clip(line), "holds a password, token or session key")
                    )

    def report(self) -> str:
        shown = self.findings[:40]
        more = len(self.findings) - len(shown)
        lines = [f"{len(self.findings)} leak(s) found:", *map(str, shown)]
        if more:
            lines.append(f"… and {more} more")
        lines += ["", "The scenario:", self.world.describe()]
        return "\n".join(lines)


def post_only_routes(routes: list[Route]) -> frozenset[str]:
    """Pages that answer GET with 405 (they only take forms) for a signed-in user, whatever the
    id: they are still probed — a 405 must leak nothing either — but less often. Found once per
    run, in a throwaway transaction, so that every scenario draws its probes the same way."""
    from django.db import transaction

    from vcisc.federation.models import User

    found = set()
    with transaction.atomic():
        user = User.objects.create_user(email="calibration@leak.example", roles=["liaison"])
        client = new_client()
        client.force_login(user)
        for route in routes:
            if route.surface == "api":
                continue
            args = {
                name: dict(route.choices)[name][0] if kind == "choice" else missing_id(kind)
                for name, kind in route.params
            }
            response = client.get(route.url(args), dict(route.query))
            if getattr(response, "streaming", False):
                _close(response)
            elif response.status_code == 405:
                found.add(route.label)
        transaction.set_rollback(True)
    return frozenset(found)


def _close(response: HttpResponseBase) -> None:
    """Close a stream without reading it, as a server would — but without the signal handler
    that closes the database connection (and with it the test's transaction), as Django's test
    client does around its own calls of ``close()``."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def _walk(data: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(data, list):
        for value in data:
            yield from _walk(value)


def _objects(data: Any) -> Iterable[dict[str, Any]]:
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _objects(value)
    elif isinstance(data, list):
        for value in data:
            yield from _objects(value)


def _blank(body: str, *values: str) -> str:
    """``body`` with the ids ``values`` and the per-request CSRF tokens blanked out."""
    body = CSRF_RE.sub("{CSRF}", body)
    for value in values:
        body = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "{ID}", body)
    return body


def _diff(a: str, b: str) -> str:
    i = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"…{a[max(0, i - 40) : i + 200]!r} vs …{b[max(0, i - 40) : i + 200]!r}"


def _qs(query: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(query.items()))


def _clip(text: str) -> str:
    return text if len(text) < 300 else text[:300] + "…"
