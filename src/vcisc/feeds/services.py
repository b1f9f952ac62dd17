"""Federation feeds: who may read and manage them, importing a MISP feed, matching engagements.

Every member and partner of the federation (not observers) reads the feeds: they hold
TLP:CLEAR and TLP:GREEN material only, so an event marked stricter than its feed is refused at
import — never widened. The secretariat's coordinators and the operators (admin role) add
feeds and pull them.

An import replaces the feed's indicators as a whole, in one transaction: a feed is what its
manifest lists now. Then every engagement indicator with a value of the feed is matched
(:class:`FeedMatch`), and so is every indicator added to an engagement later
(:func:`match_new_indicators`, called by ``add_indicators``). A match is shown to whoever may
read the engagement's indicator, and the engagement's participant organisations are told —
unless the indicator is TLP:RED, which goes to named people only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from vcisc import authz
from vcisc.audit.log import audit, snapshot
from vcisc.engagements.models import CorrelationRelation, Engagement, Indicator, Participant
from vcisc.errors import Forbidden, Invalid, NotFound
from vcisc.federation.models import Organisation, User
from vcisc.feeds.models import FEED_TLPS, Feed, FeedIndicator, FeedMatch
from vcisc.sharing.reports import ImportMode, ImportReport, ObjectProblem
from vcisc.tlp import Tlp, parse_tlp

__all__ = [
    "FeedResult",
    "add_from_collection",
    "create_feed",
    "due_feeds",
    "feed_matches_visible",
    "get_feed",
    "import_feed_content",
    "match_new_indicators",
    "may_manage_feeds",
    "may_read_feeds",
    "pull_feed",
    "removed_from_collection",
    "update_feed",
    "visible_feeds",
]

SAME, WITHIN = CorrelationRelation.SAME.value, CorrelationRelation.WITHIN.value

_BATCH = 500
#: How many digests one look-up statement carries.
_LOOKUP = 5_000


@dataclass(frozen=True)
class FeedResult:
    feed: Feed
    report: ImportReport
    events: int
    indicators: int
    matches: int


def may_read_feeds(user: User) -> bool:
    """Members, partners and the secretariat; not observers (the federation collections' rule)."""
    from vcisc.sharing.taxii.scopes import federation_reader

    return federation_reader(user)


def may_manage_feeds(user: User) -> bool:
    return may_read_feeds(user) and (authz.is_coordinator(user) or authz.is_admin(user))


def visible_feeds(user: User) -> QuerySet[Feed]:
    if not may_read_feeds(user):
        raise Forbidden("feeds are shared with the federation's members and partners only")
    return Feed.objects.all()


def get_feed(user: User, feed_id: UUID) -> Feed:
    feed = Feed.objects.filter(pk=feed_id).first() if may_read_feeds(user) else None
    if feed is None:
        raise NotFound(f"no feed {feed_id}")
    return feed


def _manager(user: User, feed_id: UUID | None = None) -> Feed | None:
    feed = get_feed(user, feed_id) if feed_id is not None else None
    if not may_manage_feeds(user):
        raise Forbidden("only secretariat coordinators and operators manage feeds")
    return feed


def create_feed(actor: User, data: Mapping[str, Any], *, now: datetime | None = None) -> Feed:
    """A new feed: ``name``, ``tlp`` (clear or green), optionally ``provider`` and ``url``."""
    from django.conf import settings

    from vcisc.notify.addresses import UrlRejected, check_webhook_url
    from vcisc.notify.policy import parse_networks

    _manager(actor)
    now = now or timezone.now()
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 120:
        raise Invalid("name", "a name of 1 to 120 characters")
    try:
        tlp = parse_tlp(str(data.get("tlp") or ""))
    except ValueError:
        tlp = None
    if tlp not in FEED_TLPS:
        raise Invalid(
            "tlp", "clear or green: a feed is shared federation-wide (AMBER and RED never are)"
        )
    url = str(data.get("url") or "").strip()
    if url:
        if len(url) > 500:
            raise Invalid("url", "at most 500 characters")
        try:
            check_webhook_url(url, parse_networks(settings.CONFIG.webhook_allowed_networks))
        except UrlRejected as exc:
            raise Invalid("url", f"the feed URL {exc}") from None
    provider = str(data.get("provider") or "").strip()
    if len(provider) > 200:
        raise Invalid("provider", "at most 200 characters")
    every = _interval(data.get("pull_every_minutes"), url)
    with transaction.atomic():
        if Feed.objects.filter(name=name).exists():
            raise Invalid("name", f"a feed named {name!r} already exists")
        feed = Feed.objects.create(
            name=name,
            provider=provider,
            url=url,
            tlp=tlp.value,
            pull_every_minutes=every,
            added_by=actor,
            created_at=now,
        )
        audit(actor, "feed.create", feed, now=now, after=snapshot(feed))
    return feed


def _interval(value: Any, url: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 5 <= value <= 10_080:
        raise Invalid("pull_every_minutes", "a whole number of minutes from 5 to 10080 (a week)")
    if not url:
        raise Invalid("pull_every_minutes", "only a feed with a URL is pulled on a schedule")
    return value


def update_feed(
    actor: User, feed_id: UUID, data: Mapping[str, Any], *, now: datetime | None = None
) -> Feed:
    """Enable or disable a feed (``enabled``), or change its schedule (``pull_every_minutes``)."""
    now = now or timezone.now()
    with transaction.atomic():
        feed = _manager(actor, feed_id)
        assert feed is not None
        feed = Feed.objects.select_for_update().get(pk=feed.pk)
        before = snapshot(feed)
        if data.get("enabled") is not None:
            feed.enabled = bool(data["enabled"])
        if "pull_every_minutes" in data:
            feed.pull_every_minutes = _interval(data["pull_every_minutes"], feed.url)
        feed.save(update_fields=["enabled", "pull_every_minutes"])
        audit(actor, "feed.update", feed, now=now, before=before, after=snapshot(feed))
    return feed


def due_feeds(now: datetime | None = None) -> list[Feed]:
    """Enabled feeds with a URL and a schedule whose last pull is older than their interval."""
    now = now or timezone.now()
    due = []
    for feed in Feed.objects.filter(enabled=True, pull_every_minutes__isnull=False).exclude(url=""):
        every = timedelta(minutes=feed.pull_every_minutes or 0)
        if feed.pulled_at is None or feed.pulled_at + every <= now:
            due.append(feed)
    return due


# --- import ------------------------------------------------------------------------------------


def pull_feed(
    actor: User,
    feed_id: UUID,
    *,
    mode: ImportMode = ImportMode.SKIP_INVALID,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> FeedResult:
    """Fetch the feed from its URL (manifest, then each event) and import it."""
    from vcisc.feeds.fetch import FeedFetcher, FeedFetchError

    feed = _manager(actor, feed_id)
    assert feed is not None
    _not_a_collection(feed)
    if not feed.url:
        raise Invalid("url", f"feed {feed.name!r} has no URL to pull from; upload it instead")
    if not feed.enabled:
        raise Invalid("enabled", f"feed {feed.name!r} is disabled")
    try:
        fetcher = FeedFetcher(feed.url)
    except FeedFetchError as exc:
        raise Invalid("url", str(exc)) from None
    try:
        manifest = fetcher.get("manifest.json")
        if manifest is None:
            raise Invalid("url", f"{feed.url}/manifest.json is not there (HTTP 404)")
        total = _manifest_size(manifest)
        done = 0

        def load(event_uuid: str) -> bytes | None:
            nonlocal done
            body = fetcher.get(f"{event_uuid}.json")
            done += 1
            if progress is not None:
                progress(done, total)
            return body

        return import_feed_content(actor, feed.pk, manifest, load, mode=mode, now=now)
    except FeedFetchError as exc:
        raise Invalid("url", str(exc)) from None
    finally:
        fetcher.close()


def _not_a_collection(feed: Feed) -> None:
    if feed.collection is not None:
        raise Invalid(
            "feed",
            f"{feed.name} is the federation's TAXII collection {feed.collection}: "
            "post STIX objects to it over TAXII",
        )


def _manifest_size(manifest: bytes) -> int:
    import json

    try:
        parsed = json.loads(manifest)
    except ValueError:
        return 0
    return len(parsed) if isinstance(parsed, dict) else 0


def import_feed_content(
    actor: User,
    feed_id: UUID,
    manifest: bytes | str | Mapping[str, Any],
    load_event: Callable[[str], bytes | str | None],
    *,
    mode: ImportMode = ImportMode.ATOMIC,
    now: datetime | None = None,
) -> FeedResult:
    """Read a MISP feed (``manifest`` and the events ``load_event(uuid)`` returns) and make it
    the feed's content; reject it all, or skip and report what is invalid (``mode``)."""
    from vcisc.engagements.indicators import ImportRejected, digest64_of, digest_of
    from vcisc.sharing.misp.importer import import_feed

    feed = _manager(actor, feed_id)
    assert feed is not None
    _not_a_collection(feed)
    ceiling = Tlp(feed.tlp)
    read = import_feed(manifest, load_event, default_tlp=ceiling, mode=mode)
    errors = list(read.report.errors)
    rows: dict[tuple[str, str], FeedIndicator] = {}
    kept_events = 0
    for index, event in enumerate(read.events):
        if event.report.rejected:
            continue
        kept_events += 1
        event_uuid = UUID(str(event.event_uuid))
        for item in event.indicators:
            if item.tlp.rank > ceiling.rank:
                errors.append(
                    ObjectProblem(
                        index,
                        str(event_uuid),
                        f"attribute #{item.index} is {item.tlp.label}, stricter than the feed's "
                        f"{ceiling.label}: a feed is read federation-wide, so it is not imported",
                    )
                )
                continue
            digest = digest_of(item.observable)
            key = (str(event_uuid), digest)
            if key in rows:
                continue
            rows[key] = FeedIndicator(
                feed=feed,
                event_uuid=event_uuid,
                event_info=(event.info or "")[:500],
                attribute_uuid=_uuid_or_none(item.attribute_uuid),
                type=item.observable.type.value,
                value=item.observable.value,
                correlation_key=str(item.observable.correlation_key),
                correlation_digest=digest,
                correlation_digest64=digest64_of(digest),
                tlp=item.tlp.value,
                for_detection=item.to_ids,
                first_seen=parse_datetime(item.first_seen) if item.first_seen else None,
                last_seen=parse_datetime(item.last_seen) if item.last_seen else None,
                comment=item.comment[:5000],
            )
            _ranged(rows[key], item.observable)
    report = ImportReport(
        mode=mode,
        seen=read.report.seen,
        accepted=kept_events,
        errors=tuple(errors),
        warnings=read.report.warnings,
        fatal=read.report.fatal,
        skipped=tuple(errors) if mode is ImportMode.SKIP_INVALID else (),
    )
    if report.rejected:
        raise ImportRejected(report)
    from vcisc.engagements.indicators import report_out

    now = now or timezone.now()
    with transaction.atomic():
        feed = Feed.objects.select_for_update().get(pk=feed.pk)
        FeedIndicator.objects.filter(feed=feed).delete()
        created = list(rows.values())
        for start in range(0, len(created), _BATCH):
            FeedIndicator.objects.bulk_create(created[start : start + _BATCH])
        feed.pulled_at = now
        feed.events = kept_events
        feed.indicators = len(created)
        outcome = report_out(report)
        # The counts and the first problems: the whole report went back to the caller.
        for part in ("errors", "warnings", "skipped"):
            outcome[part] = outcome[part][:50]
        feed.last_report = outcome
        feed.save(update_fields=["pulled_at", "events", "indicators", "last_report"])
        matches = _match_feed(feed, created, now)
        audit(
            actor,
            "feed.import",
            feed,
            now=now,
            after={
                "events": kept_events,
                "indicators": len(created),
                "skipped": len(report.skipped),
                "matches": matches,
                "values_sha256": hashlib.sha256(
                    "\n".join(sorted(d for _, d in rows)).encode()
                ).hexdigest(),
            },
        )
    return FeedResult(feed, report, kept_events, len(created), matches)


def _ranged(row: FeedIndicator, observable: Any) -> FeedIndicator:
    """The row with the addresses its IP or CIDR value covers (for containment)."""
    from vcisc.sharing.observables import address_range

    covered = address_range(observable)
    if covered is not None:
        row.range_low, row.range_high = covered
    return row


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


# --- the federation TAXII collections ----------------------------------------------------------


def _collection_feed(collection: UUID, scope: Tlp, actor: User, now: datetime) -> Feed:
    """The feed that is a federation TAXII collection (made when something is first posted)."""
    feed = Feed.objects.filter(collection=collection).first()
    if feed is None:
        feed, _ = Feed.objects.get_or_create(
            collection=collection,
            defaults={
                "name": f"Federation TAXII collection ({scope.label})",
                "provider": "VCISC members (TAXII 2.1)",
                "tlp": scope.value,
                "added_by": actor,
                "created_at": now,
            },
        )
    return feed


def add_from_collection(
    actor: User,
    collection: UUID,
    scope: Tlp,
    objects: Sequence[Any],
    now: datetime,
) -> int:
    """Indicators just posted to a federation collection join its feed and are matched with the
    engagements (in the caller's transaction). ``objects`` are the importer's valid objects."""
    from vcisc.engagements.indicators import digest64_of, digest_of, stix_indicator_inputs

    feed = _collection_feed(collection, scope, actor, now)
    rows: dict[str, FeedIndicator] = {}
    for obj in objects:
        for item in stix_indicator_inputs(obj):
            digest = digest_of(item.observable)
            if digest in rows:
                continue
            rows[digest] = _ranged(
                FeedIndicator(
                    feed=feed,
                    event_uuid=collection,
                    event_info=str(obj.stix.get("name") or obj.id)[:500],
                    stix_id=str(obj.id)[:300],
                    type=item.observable.type.value,
                    value=item.observable.value,
                    correlation_key=str(item.observable.correlation_key),
                    correlation_digest=digest,
                    correlation_digest64=digest64_of(digest),
                    tlp=(item.tlp or scope).value,
                    for_detection=item.for_detection,
                    first_seen=item.first_seen,
                    comment=item.description,
                ),
                item.observable,
            )
    if not rows:
        return 0
    held = set(
        FeedIndicator.objects.filter(feed=feed, correlation_digest__in=list(rows)).values_list(
            "correlation_digest", flat=True
        )
    )
    fresh = [r for d, r in rows.items() if d not in held]
    for start in range(0, len(fresh), _BATCH):
        FeedIndicator.objects.bulk_create(fresh[start : start + _BATCH])
    Feed.objects.filter(pk=feed.pk).update(
        pulled_at=now, indicators=FeedIndicator.objects.filter(feed=feed).count()
    )
    return _match_feed(feed, fresh, now) if feed.enabled else 0


def removed_from_collection(collection: UUID, stix_id: str) -> None:
    """A STIX object deleted from a federation collection leaves its feed (matches stay on
    record: the value was there when they were made)."""
    feed = Feed.objects.filter(collection=collection).first()
    if feed is not None:
        FeedIndicator.objects.filter(feed=feed, stix_id=stix_id).delete()
        Feed.objects.filter(pk=feed.pk).update(
            indicators=FeedIndicator.objects.filter(feed=feed).count()
        )


# --- matching ----------------------------------------------------------------------------------


def _lookup(model: Any, digests: Mapping[str, int], **filters: Any) -> list[Any]:
    """Rows of ``model`` whose ``correlation_digest`` is a key of ``digests`` (probed by the
    64-bit prefix index, confirmed by the full digest)."""
    probes = sorted(set(digests.values()))
    found = []
    for start in range(0, len(probes), _LOOKUP):
        chunk = probes[start : start + _LOOKUP]
        for row in model.objects.filter(correlation_digest64__in=chunk, **filters):
            if row.correlation_digest in digests:
                found.append(row)
    return found


Found = tuple[Indicator, Feed, FeedIndicator, str]


def _match_feed(feed: Feed, rows: Sequence[FeedIndicator], now: datetime) -> int:
    """Match the feed's (new) content against every engagement's indicators: the same values,
    and CIDR containment both ways (an engagement's address or network inside a network of
    the feed, the feed's inside an engagement's network)."""
    from vcisc.engagements.indicators import (
        CONTAINED_LIMIT,
        holding,
        networks_over,
        ranges_inside,
        wide_networks,
    )

    by_digest: dict[str, FeedIndicator] = {}
    for row in rows:
        by_digest.setdefault(row.correlation_digest, row)
    held = _lookup(Indicator, {d: r.correlation_digest64 for d, r in by_digest.items()})
    found: list[Found] = [(i, feed, by_digest[i.correlation_digest], SAME) for i in held]
    ranged = [r for r in rows if r.range_low]
    if ranged:
        nets = networks_over(Indicator.objects.all(), ranged)
        found += [(net, feed, row, WITHIN) for net, row in holding(nets, ranged)]
        for row in wide_networks(ranged):
            inside = ranges_inside(Indicator.objects.all(), row)[:CONTAINED_LIMIT]
            found += [(i, feed, row, WITHIN) for i in inside]
    return _record(found, now=now)


def match_new_indicators(created: Sequence[Indicator], now: datetime) -> int:
    """Match indicators just added to an engagement against every enabled feed: the same
    values, and CIDR containment both ways (as :func:`_match_feed`)."""
    from vcisc.engagements.indicators import (
        CONTAINED_LIMIT,
        holding,
        networks_over,
        ranges_inside,
        wide_networks,
    )

    if not created or not Feed.objects.filter(enabled=True, indicators__gt=0).exists():
        return 0
    by_digest = {i.correlation_digest: i for i in created}
    same = _lookup(
        FeedIndicator,
        {d: i.correlation_digest64 for d, i in by_digest.items()},
        feed__enabled=True,
    )
    pairs: list[tuple[Indicator, FeedIndicator, str]] = [
        (by_digest[row.correlation_digest], row, SAME) for row in same
    ]
    ranged = [i for i in created if i.range_low]
    if ranged:
        enabled = FeedIndicator.objects.filter(feed__enabled=True)
        pairs += [(i, net, WITHIN) for net, i in holding(networks_over(enabled, ranged), ranged)]
        for new in wide_networks(ranged):
            inside = ranges_inside(enabled, new)[:CONTAINED_LIMIT]
            pairs += [(new, row, WITHIN) for row in inside]
    feeds = Feed.objects.in_bulk({row.feed_id for _, row, _ in pairs})
    return _record([(i, feeds[row.feed_id], row, how) for i, row, how in pairs], now=now)


def _record(candidates: Sequence[Found], *, now: datetime) -> int:
    """Store the matches not yet known (one per indicator and feed: the first found, the same
    value before containment), and tell the engagements' organisations of them."""
    if not candidates:
        return 0
    known: set[tuple[UUID, UUID]] = set()
    indicator_ids = sorted({i.pk for i, _, _, _ in candidates})
    feed_ids = {f.pk for _, f, _, _ in candidates}
    for start in range(0, len(indicator_ids), _LOOKUP):
        chunk = indicator_ids[start : start + _LOOKUP]
        known.update(
            FeedMatch.objects.filter(indicator_id__in=chunk, feed_id__in=feed_ids).values_list(
                "indicator_id", "feed_id"
            )
        )
    fresh = []
    for indicator, feed, row, relation in candidates:
        if (indicator.pk, feed.pk) in known:
            continue
        known.add((indicator.pk, feed.pk))
        fresh.append(
            FeedMatch(
                indicator=indicator,
                feed=feed,
                correlation_key=row.correlation_key,
                relation=relation,
                event_uuid=row.event_uuid,
                event_info=row.event_info,
                created_at=now,
            )
        )
    for start in range(0, len(fresh), _BATCH):
        FeedMatch.objects.bulk_create(fresh[start : start + _BATCH], ignore_conflicts=True)
    _tell(fresh, now)
    return len(fresh)


def _tell(matches: Sequence[FeedMatch], now: datetime) -> None:
    """One notification per engagement and feed to each participant organisation, marked with
    the strictest TLP of the indicators it names; TLP:RED indicators are named to no desk."""
    from vcisc.notify.outbox import queue_correlation
    from vcisc.tlp import strictest

    groups: dict[tuple[UUID, UUID], list[FeedMatch]] = {}
    for match in matches:
        if Tlp(match.indicator.tlp) is Tlp.RED:
            continue
        groups.setdefault((match.indicator.engagement_id, match.feed_id), []).append(match)
    for (engagement_id, _), found in groups.items():
        eng = Engagement.objects.select_related("rfa").get(pk=engagement_id)
        feed = found[0].feed
        marking = strictest(Tlp(m.indicator.tlp) for m in found)
        values = sorted({m.indicator.value for m in found})
        shown = ", ".join(values[:20]) + (
            f" and {len(values) - 20} more" if len(values) > 20 else ""
        )
        orgs = Participant.objects.filter(engagement=eng).values_list("organisation", flat=True)
        for org in Organisation.objects.filter(pk__in=list(orgs), active=True):
            queue_correlation(
                eng.rfa,
                org,
                subject=f"[{marking.label}] {eng.rfa.reference}: {len(values)} indicator(s) "
                f"in feed {feed.name}",
                body=f"The engagement {eng.rfa.reference} holds indicators also in the "
                f"federation feed {feed.name}: {shown}.",
                payload={"reference": eng.rfa.reference, "feed": feed.name, "values": values[:100]},
                tlp=marking,
                now=now,
                kind="indicator.in_feed",
            )


def feed_matches_visible(user: User, engagement: Engagement) -> list[dict[str, Any]]:
    """This engagement's indicators the user may read that are also in a feed."""
    from vcisc.engagements.indicators import indicators_visible

    if not may_read_feeds(user):
        return []
    mine = indicators_visible(user, engagement).values_list("pk", flat=True)
    rows = FeedMatch.objects.filter(indicator_id__in=mine).select_related("indicator", "feed")
    return [
        {
            "indicator_id": m.indicator_id,
            "type": m.indicator.type,
            "value": m.indicator.value,
            "feed_id": m.feed_id,
            "feed": m.feed.name,
            "relation": m.relation,
            "feed_value": m.correlation_key.partition(":")[2] or m.correlation_key,
            "event_uuid": m.event_uuid,
            "event_info": m.event_info,
            "created_at": m.created_at,
        }
        for m in rows
    ]
