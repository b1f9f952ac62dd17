"""Objects (TAXII 2.1 §5.4 get and add), manifest (§5.3), one object (§5.5 get, §5.6 delete)
and its versions (§5.7).

Reads are keyset pages over the rows of :mod:`vcisc.sharing.taxii.store`, oldest added first:
the stored JSON texts are joined into the envelope without being parsed again. Every read goes
through the collection's row filter, so counts, ``more``, ``next`` and the
``X-TAXII-Date-Added-First``/``-Last`` headers (§3.6.2) are computed over what this user may
read only.
"""

from __future__ import annotations

import dataclasses

import orjson
from django.http import HttpRequest, HttpResponse

from vcisc.federation.models import User
from vcisc.sharing.taxii import store
from vcisc.sharing.taxii.discovery import max_content_length
from vcisc.sharing.taxii.endpoint import endpoint
from vcisc.sharing.taxii.errors import TaxiiError
from vcisc.sharing.taxii.media import (
    check_content_type,
    encode_next,
    json_response,
    parse_filters,
    timestamp,
)
from vcisc.sharing.taxii.scopes import Collection, get_collection
from vcisc.sharing.taxii.status import status_body

__all__ = ["manifest", "object_versions", "objects", "objects_body", "one_object"]

_STIX = "application/stix+json;version=2.1"
_ONE_OBJECT = frozenset({"added_after", "limit", "next", "match[version]", "match[spec_version]"})
_VERSIONS = frozenset({"added_after", "limit", "next", "match[spec_version]"})
_DELETE = frozenset({"match[version]", "match[spec_version]"})


def _readable(user: User, collection_id: str) -> Collection:
    col = get_collection(user, collection_id)
    if not col.can_read:
        raise TaxiiError(403, "Forbidden", "you may not read this collection")
    if col.engagement is not None:
        store.materialise(col.engagement)
    return col


def _headers(p: store.Page) -> dict[str, str]:
    if p.first_added is None or p.last_added is None:
        return {}
    return {
        "X-TAXII-Date-Added-First": timestamp(p.first_added),
        "X-TAXII-Date-Added-Last": timestamp(p.last_added),
    }


def _envelope(p: store.Page, key: bytes, items: bytes) -> bytes:
    head = (
        b'{"more":true,"next":"' + encode_next(p.last_added).encode() + b'",'
        if (p.more and p.last_added is not None)
        else b'{"more":false,'
    )
    return head + b'"' + key + b'":[' + items + b"]}"


def objects_body(p: store.Page) -> tuple[bytes, dict[str, str]]:
    """The envelope of a page of stored texts, and its date-added headers."""
    texts = ",".join(text for _, text in p.items).encode()
    return _envelope(p, b"objects", texts), _headers(p)


def _objects_page(p: store.Page) -> HttpResponse:
    body, headers = objects_body(p)
    return json_response(body, headers=headers)


@endpoint("GET", "POST")
def objects(request: HttpRequest, user: User, root: str, collection_id: str) -> HttpResponse:
    if request.method == "POST":
        return _add(request, user, collection_id)
    col = _readable(user, collection_id)
    f = parse_filters(request.GET)
    return _objects_page(store.text_page(store.rows(col, f), f.limit))


def _add(request: HttpRequest, user: User, collection_id: str) -> HttpResponse:
    col = get_collection(user, collection_id)
    check_content_type(request.headers.get("Content-Type"))
    limit = max_content_length()
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit or len(request.body) > limit:
        raise TaxiiError(
            413,
            "Request entity too large",
            f"this API root accepts at most {limit} bytes a request (max_content_length)",
        )
    status = store.add_objects(user, col, request.body, max_bytes=limit)
    return json_response(status_body(status), status=202)


@endpoint("GET")
def manifest(request: HttpRequest, user: User, root: str, collection_id: str) -> HttpResponse:
    col = _readable(user, collection_id)
    f = parse_filters(request.GET)
    p = store.page(store.rows(col, f), f.limit, "stix_id", "version")
    entries = [
        {
            "id": sid,
            "date_added": timestamp(added),
            "version": timestamp(version),
            "media_type": _STIX,
        }
        for added, sid, version in p.items
    ]
    items = orjson.dumps(entries)[1:-1]
    return json_response(_envelope(p, b"objects", items), headers=_headers(p))


def _missing(object_id: str) -> TaxiiError:
    return TaxiiError(404, "Object not found", f"no object {object_id} in this collection")


@endpoint("GET", "DELETE")
def one_object(
    request: HttpRequest, user: User, root: str, collection_id: str, object_id: str
) -> HttpResponse:
    if request.method == "DELETE":
        col = get_collection(user, collection_id)
        f = parse_filters(request.GET, allowed=_DELETE)
        if request.GET.get("match[version]") is None:
            f = dataclasses.replace(f, versions=("all",))
        store.delete_object(user, col, object_id, f)
        return HttpResponse(status=200, content_type="application/taxii+json;version=2.1")
    col = _readable(user, collection_id)
    f = parse_filters(request.GET, allowed=_ONE_OBJECT)
    if not store.rows(
        col,
        dataclasses.replace(f, versions=("all",), added_after=None, after=None),
        stix_id=object_id,
    ).exists():
        raise _missing(object_id)
    return _objects_page(store.text_page(store.rows(col, f, stix_id=object_id), f.limit))


@endpoint("GET")
def object_versions(
    request: HttpRequest, user: User, root: str, collection_id: str, object_id: str
) -> HttpResponse:
    col = _readable(user, collection_id)
    f = dataclasses.replace(parse_filters(request.GET, allowed=_VERSIONS), versions=("all",))
    if not store.rows(
        col, dataclasses.replace(f, added_after=None, after=None), stix_id=object_id
    ).exists():
        raise _missing(object_id)
    p = store.page(store.rows(col, f, stix_id=object_id), f.limit, "version")
    items = orjson.dumps([timestamp(v) for _, v in p.items])[1:-1]
    return json_response(_envelope(p, b"versions", items), headers=_headers(p))
