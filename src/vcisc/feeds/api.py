"""Federation feeds API: list and read feeds (members and partners), add, pull and upload them
(secretariat coordinators and operators)."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from vcisc.engagements.indicators import report_out
from vcisc.feeds import services
from vcisc.feeds.models import Feed, FeedIndicator
from vcisc.http import Page, StrictSchema, user_of
from vcisc.sharing.reports import ImportMode

router = Router(tags=["feeds"])


class FeedOut(Schema):
    id: UUID
    name: str
    provider: str
    url: str
    tlp: str
    enabled: bool
    pull_every_minutes: int | None
    created_at: datetime
    pulled_at: datetime | None
    events: int
    indicators: int
    last_report: dict[str, Any]


class FeedIn(StrictSchema):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    tlp: Literal["clear", "green"] = Field(
        description="the marking of untagged events, and the strictest any event may carry"
    )
    provider: Annotated[str, Field(max_length=200)] = ""
    url: Annotated[str, Field(max_length=500)] = Field(
        "", description="the feed's base URL (manifest.json and <uuid>.json beneath it)"
    )
    pull_every_minutes: Annotated[int, Field(ge=5, le=10_080)] | None = Field(
        None, description="pull on a schedule this often (``vcisc feed pull --due``)"
    )


class FeedPatch(StrictSchema):
    enabled: bool | None = None
    pull_every_minutes: Annotated[int, Field(ge=5, le=10_080)] | None = Field(
        None, description="pull on a schedule this often (null: by hand)"
    )


class FeedUploadIn(StrictSchema):
    manifest: dict[str, Any] = Field(description="manifest.json: event uuid → event metadata")
    events: dict[str, Any] = Field(description="event uuid → the event file (MISP core format)")
    on_error: Literal["reject", "skip"] = Field(
        "reject", description="reject the whole feed, or skip invalid events and attributes"
    )


class FeedPullIn(StrictSchema):
    on_error: Literal["reject", "skip"] = "skip"


class FeedImportOut(Schema):
    feed: FeedOut
    events: int
    indicators: int
    matches: int
    report: dict[str, Any]


class FeedIndicatorOut(Schema):
    type: str
    value: str
    tlp: str
    for_detection: bool
    event_uuid: UUID
    event_info: str
    first_seen: datetime | None
    last_seen: datetime | None
    comment: str


def _mode(on_error: str) -> ImportMode:
    return ImportMode.ATOMIC if on_error == "reject" else ImportMode.SKIP_INVALID


def _imported(result: services.FeedResult) -> dict[str, Any]:
    return {
        "feed": result.feed,
        "events": result.events,
        "indicators": result.indicators,
        "matches": result.matches,
        "report": report_out(result.report),
    }


@router.get("/feeds", response=list[FeedOut])
def list_feeds(request: HttpRequest) -> Any:
    return list(services.visible_feeds(user_of(request)))


@router.post("/feeds", response={201: FeedOut})
def create_feed(request: HttpRequest, body: FeedIn) -> Status[Feed]:
    return Status(201, services.create_feed(user_of(request), body.model_dump()))


@router.get("/feeds/{feed_id}", response=FeedOut)
def get_feed(request: HttpRequest, feed_id: UUID) -> Feed:
    return services.get_feed(user_of(request), feed_id)


@router.patch("/feeds/{feed_id}", response=FeedOut)
def update_feed(request: HttpRequest, feed_id: UUID, body: FeedPatch) -> Feed:
    return services.update_feed(user_of(request), feed_id, body.model_dump(exclude_unset=True))


@router.get("/feeds/{feed_id}/indicators", response=list[FeedIndicatorOut])
@paginate(Page)
def feed_indicators(request: HttpRequest, feed_id: UUID) -> Any:
    feed = services.get_feed(user_of(request), feed_id)
    return FeedIndicator.objects.filter(feed=feed).order_by("id")


@router.post("/feeds/{feed_id}/pull", response=FeedImportOut)
def pull_feed(request: HttpRequest, feed_id: UUID, body: FeedPullIn) -> dict[str, Any]:
    """Fetch the feed from its URL and make what it lists now the feed's content."""
    result = services.pull_feed(user_of(request), feed_id, mode=_mode(body.on_error))
    return _imported(result)


@router.post("/feeds/{feed_id}/import", response=FeedImportOut)
def upload_feed(request: HttpRequest, feed_id: UUID, body: FeedUploadIn) -> dict[str, Any]:
    """A feed's files sent in one body, for a feed this server cannot reach."""
    result = services.import_feed_content(
        user_of(request),
        feed_id,
        body.manifest,
        lambda event_uuid: _event_bytes(body.events.get(event_uuid)),
        mode=_mode(body.on_error),
    )
    return _imported(result)


def _event_bytes(event: Any) -> bytes | None:
    import orjson

    return None if event is None else orjson.dumps(event)
