"""Every read route of the application, found rather than listed by hand.

* The API: every GET operation of the OpenAPI document (``api.get_openapi_schema()``), with its
  path parameters (filled from the scenario by their names, :data:`PARAM_KINDS`) and its optional
  query parameters (filters, pagination: drawn from their schema).
* Everything else: Django's URL resolver, walked from the root — the console's pages (``web``
  namespace), the operators' admin, the API's own documents (``openapi.json``, ``docs``),
  ``healthz``, and whatever is added later (a TAXII root would be found here the day it is
  mounted). Each pattern is requested with GET; a page that only accepts POST answers 405, which
  must leak nothing either.

A route whose parameters cannot be filled from its pattern — a path parameter with an unknown
name, a regular expression, a required query parameter, a streaming response — makes
:func:`discover` (or the checker, for streams) fail with a message saying to describe it in
:data:`DESCRIBED`. That table is the only hand-written part, and it is small on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

__all__ = [
    "DESCRIBED",
    "NAMES_PUBLIC",
    "PARAM_KINDS",
    "Description",
    "QueryParam",
    "Route",
    "Undescribed",
    "discover",
]

#: Path parameter names and the kind of object whose ids fill them.
PARAM_KINDS: dict[str, str] = {
    "rfa_id": "rfa",
    "offer_id": "offer",
    "eng_id": "engagement",
    "engagement_id": "engagement",
    "task_id": "task",
    "org_id": "organisation",
    "contact_id": "contact",
    "cap_id": "capability",
    "user_id": "user",
    "code": "nation",
    "key_id": "token",
    # TAXII 2.1: an engagement's collection has the engagement's id; the federation
    # collections (fixed ids) are tried when the scenario posted objects to them.
    "collection_id": "collection",
    # The MISP feed VCISC serves: one event per engagement, named by misp_event_uuid.
    "event_uuid": "misp_event",
    # Federation feeds hold no request content (tests/feeds covers who reads them).
    "feed_id": "model:feeds.feed",
}


@dataclass(frozen=True)
class Description:
    """How to exercise a route that its pattern alone does not say.

    ``query``: a fixed query string; ``params``: values for path parameters the scenario has no
    ids for; ``skip``: why the route is not requested at all (must be a real reason);
    ``streams``: the response is a stream that ``query`` makes finite.
    """

    why: str
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skip: bool = False
    streams: bool = False
    weight: float = 1.0


#: The routes that need more than their pattern to be exercised, by label.
DESCRIBED: dict[str, Description] = {
    "web:events": Description(
        "a live stream of server-sent events that runs for minutes; ?once=1 answers what is "
        "pending (timeline entries since 0, recent deadline breaches) and ends",
        query={"once": "1", "since": "0"},
        streams=True,
    ),
    "api-v1:openapi-json": Description(
        "the OpenAPI document: the same for everyone who may read it, and ~0.2 s to build, "
        "so it is drawn a tenth as often as other routes",
        weight=0.1,
    ),
    "admin:app_list": Description(
        "the admin's per-application index; its app_label is one of the registered apps",
        params={"app_label": ("auth", "federation", "notify", "audit")},
    ),
    "admin:view_on_site": Description(
        "redirects to a model's get_absolute_url(); no model registered in the admin has one",
        skip=True,
    ),
    "web:oidc-start": Description(
        "signs in through a configured identity provider, by its name; none is configured in "
        "the tests, so an unknown name is tried (it must answer like any other)",
        params={"name": ("no-such-provider",)},
    ),
    "web:oidc-callback": Description(
        "an identity provider's redirect back, by its name (see web:oidc-start)",
        params={"name": ("no-such-provider",)},
    ),
    # TAXII 2.1 (vcisc.sharing.taxii): one API root; STIX ids and status ids name nothing the
    # scenarios generate, so a well-formed id that does not exist is tried (it must answer
    # like any other missing id); the collection is filled with engagement ids (PARAM_KINDS).
    "taxii:api-root": Description(
        "TAXII 2.1: the API root, by its name",
        params={"root": ("vcisc",)},
    ),
    "taxii:collections": Description(
        "TAXII 2.1: the collections of the API root",
        params={"root": ("vcisc",)},
    ),
    "taxii:collection": Description(
        "TAXII 2.1: one collection of the API root",
        params={"root": ("vcisc",)},
    ),
    "taxii:objects": Description(
        "TAXII 2.1: a collection's objects (GET; POST adds)",
        params={"root": ("vcisc",)},
    ),
    "taxii:manifest": Description(
        "TAXII 2.1: a collection's manifest",
        params={"root": ("vcisc",)},
    ),
    "taxii:status": Description(
        "TAXII 2.1: a POST's status resource, by its id",
        params={"root": ("vcisc",), "status_id": ("00000000-0000-4000-8000-00000000abcd",)},
    ),
    "taxii:status-no-slash": Description(
        "TAXII 2.1: a status resource without the trailing slash (taxii2-client)",
        params={"root": ("vcisc",), "status_id": ("00000000-0000-4000-8000-00000000abcd",)},
    ),
    "taxii:object": Description(
        "TAXII 2.1: one object of a collection, by its STIX id",
        params={
            "root": ("vcisc",),
            "object_id": ("indicator--00000000-0000-4000-8000-00000000abcd",),
        },
    ),
    "taxii:versions": Description(
        "TAXII 2.1: the versions of one object, by its STIX id",
        params={
            "root": ("vcisc",),
            "object_id": ("indicator--00000000-0000-4000-8000-00000000abcd",),
        },
    ),
    r"admin:admin/(?P<url>.*)$": Description(
        "the admin's catch-all: redirects unknown admin URLs to the login page or answers 404",
        skip=True,
    ),
}

#: Routes that list every organisation by design: organisation names (and nation codes, ids)
#: are public there, so the participation check does not apply; every other check does.
NAMES_PUBLIC: dict[str, str] = {
    "tag:directory": "the federation directory (nations, organisations, contacts, capabilities, "
    "users, tokens) is known to every member",
    "web:directory": "the directory page",
    "web:directory-capabilities": "an organisation's catalogue page",
    "web:request-new": "the form offers every organisation as a possible exclusion",
    "web:request-edit": "the form offers every organisation as a possible exclusion",
    "web:users": "people management (admins): every organisation, to choose from",
    "web:user-new": "people management (admins): every organisation, to choose from",
    "web:user-detail": "people management (admins): every organisation, to choose from",
    "admin:*": "the operators' admin lists the directory and the audit trail (who did what); "
    "it shows no request content, which is checked",
}


class Undescribed(AssertionError):
    """A route the suite cannot exercise on its own."""

    def __init__(self, label: str, problem: str) -> None:
        super().__init__(
            f"The leak suite cannot exercise {label}: {problem}. Describe it in DESCRIBED "
            f"(tests/leak/routes.py) — how to fill it, or why it is skipped — or name its path "
            f"parameter after the object it takes in PARAM_KINDS."
        )


@dataclass(frozen=True)
class QueryParam:
    """An optional query parameter of an API operation, from its JSON schema."""

    name: str
    type: str
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Route:
    surface: str  # "api", "page" (web console), "admin", "other"
    label: str
    path: str  # with {name} placeholders
    params: tuple[tuple[str, str], ...] = ()  # (name, kind)
    query: tuple[tuple[str, str], ...] = ()
    filters: tuple[QueryParam, ...] = ()
    names_public: bool = False
    streams: bool = False
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()  # described parameter values
    weight: float = 1.0  # described: how often it is drawn, relative to its peers

    def url(self, args: dict[str, Any]) -> str:
        return self.path.format(**{k: args[k] for k, _ in self.params})


# --- the API ------------------------------------------------------------------------------------


def _schema_of(param: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = param.get("schema", {})
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            merged = dict(schema)
            merged.pop("anyOf")
            merged.update(option)
            return merged
    return schema


def api_routes() -> list[Route]:
    from vcisc.api import api

    routes = []
    for path, operations in api.get_openapi_schema()["paths"].items():
        op = operations.get("get")
        if op is None:
            continue
        label = f"GET {path}"
        params: list[tuple[str, str]] = []
        filters: list[QueryParam] = []
        for p in op.get("parameters", []):
            name, where = p["name"], p["in"]
            if where == "path":
                if name not in PARAM_KINDS:
                    raise Undescribed(label, f"path parameter {name!r} takes no known object")
                params.append((name, PARAM_KINDS[name]))
            elif where == "query":
                if p.get("required"):
                    raise Undescribed(label, f"required query parameter {name!r}")
                s = _schema_of(p)
                filters.append(
                    QueryParam(
                        name,
                        str(s.get("type", "string")),
                        tuple(str(v) for v in s.get("enum", ())),
                        s.get("minimum"),
                        s.get("maximum"),
                        s.get("maxLength"),
                    )
                )
            else:
                raise Undescribed(label, f"{where} parameter {name!r}")
        routes.append(
            Route(
                "api",
                label,
                path,
                tuple(params),
                filters=tuple(filters),
                names_public="directory" in op.get("tags", []),
            )
        )
    return routes


# --- everything else, from the URL resolver ---------------------------------------------------

_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_REGEX_CHARS = re.compile(r"[\^$()?*+\[\]\\]")


def _walk(
    resolver: URLResolver, prefix: str = "", namespace: str | None = None
) -> Iterator[tuple[str | None, str, URLPattern]]:
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p, prefix + str(p.pattern), ns)
        else:
            yield namespace, prefix + str(p.pattern), p


def _normalise(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path.strip("/"))


def resolver_routes(api_paths: set[str]) -> list[Route]:
    covered = {_normalise(p) for p in api_paths}
    routes: list[Route] = []
    for namespace, route, pattern in _walk(get_resolver()):
        ns = namespace or ""
        label = f"{ns}:{pattern.name or route}" if ns else (pattern.name or route)
        if ns == "api-v1" and _normalise(route) in covered:
            continue  # an API operation: exercised from the OpenAPI document
        described = DESCRIBED.get(label)
        if described is not None and described.skip:
            assert len(described.why) > 20, f"say why {label} is skipped"
            continue
        surface = {"web": "page", "admin": "admin"}.get(ns, "other")
        if _REGEX_CHARS.search(route.replace("<", "").replace(">", "")) and not (
            described and described.params
        ):
            raise Undescribed(label, f"its pattern is a regular expression ({route!r})")
        params: list[tuple[str, str]] = []
        choices: list[tuple[str, tuple[str, ...]]] = []
        path = route
        if described is not None and described.params:
            for name, values in described.params.items():
                path = re.sub(rf"\(\?P<{name}>[^)]*\)", "{" + name + "}", path)
                choices.append((name, values))
                params.append((name, "choice"))
            path = path.replace("^", "").replace("$", "")
        for m in _PARAM.finditer(route):
            name = m.group("name")
            if described is not None and name in described.params:
                path = path.replace(m.group(0), "{" + name + "}")
                continue
            if name in PARAM_KINDS:
                kind = PARAM_KINDS[name]
            elif ns == "admin" and name in ("object_id", "pk"):
                # The admin's per-object pages: admin/<app>/<model>/<id>/…
                app, model = route.split("/")[1:3]
                kind = f"model:{app}.{model}"
            else:
                raise Undescribed(label, f"path parameter {name!r} takes no known object")
            params.append((name, kind))
            path = path.replace(m.group(0), "{" + name + "}")
        routes.append(
            Route(
                surface,
                label,
                "/" + path,
                tuple(params),
                query=tuple((described.query if described else {}).items()),
                names_public=surface == "admin" or label in NAMES_PUBLIC,
                streams=bool(described and described.streams),
                choices=tuple(choices),
                weight=described.weight if described else 1.0,
            )
        )
    return routes


def discover() -> list[Route]:
    """Every read route, API first; raises :class:`Undescribed` for one it cannot exercise."""
    from vcisc.api import api

    documented = set(api.get_openapi_schema()["paths"])  # every method: POST-only ones too
    return api_routes() + resolver_routes(documented)
