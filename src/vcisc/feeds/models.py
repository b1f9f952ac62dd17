"""A federation feed, the indicators it holds now, and the engagement indicators found in it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from vcisc.engagements.models import CorrelationRelation, Indicator
from vcisc.ids import uuid_primary_key
from vcisc.sharing.observables import MAX_URL_LENGTH, ObservableType
from vcisc.tlp import Tlp

__all__ = ["FEED_TLPS", "Feed", "FeedIndicator", "FeedMatch"]

#: A federation feed is read by every member and partner: nothing stricter than GREEN.
FEED_TLPS = (Tlp.CLEAR, Tlp.GREEN)


class Feed(models.Model):
    """A MISP feed the federation follows (pulled from ``url``) or one uploaded by hand, or a
    federation TAXII collection (``collection``).

    ``tlp`` is the marking of the feed's untagged events and the widest marking any of its
    indicators may carry: events marked stricter are refused at import (never widened).
    """

    id = uuid_primary_key()
    name = models.CharField(max_length=120, unique=True)
    provider = models.CharField(max_length=200, blank=True)
    #: The feed's base URL (``<url>/manifest.json``, ``<url>/<uuid>.json``); blank if uploaded.
    url = models.URLField(max_length=500, blank=True)
    tlp = models.CharField(max_length=12, choices=[(t.value, t.label) for t in FEED_TLPS])
    #: Set for the feed that is a federation TAXII collection (vcisc.sharing.taxii.scopes): its
    #: content is what members post there, never pulled or uploaded.
    collection = models.UUIDField(null=True, blank=True, unique=True)
    enabled = models.BooleanField(default=True)
    #: Pull the feed this often (``vcisc feed pull --due``, from cron or a timer); None: by hand.
    pull_every_minutes = models.PositiveIntegerField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    pulled_at = models.DateTimeField(null=True, blank=True)
    #: How many events and indicators the last import kept, and what it skipped.
    events = models.PositiveIntegerField(default=0)
    indicators = models.PositiveIntegerField(default=0)
    last_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in FEED_TLPS]), name="feed_tlp_federation"
            )
        ]

    def __str__(self) -> str:
        return f"feed {self.name}"


class FeedIndicator(models.Model):
    """One normalised value of a feed as of its last import (an import replaces them all).

    Keyed for correlation exactly like :class:`vcisc.engagements.models.Indicator`.
    """

    id = models.BigAutoField(primary_key=True)
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="+")
    event_uuid = models.UUIDField()
    event_info = models.CharField(max_length=500, blank=True)
    attribute_uuid = models.UUIDField(null=True, blank=True)
    #: The STIX indicator it came from (a federation TAXII collection's feed).
    stix_id = models.CharField(max_length=300, blank=True)
    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in ObservableType])
    value = models.TextField(max_length=MAX_URL_LENGTH)
    correlation_key = models.TextField(max_length=MAX_URL_LENGTH + 20)
    correlation_digest = models.CharField(max_length=64)
    correlation_digest64 = models.BigIntegerField()
    tlp = models.CharField(max_length=12, choices=[(t.value, t.label) for t in FEED_TLPS])
    for_detection = models.BooleanField(default=True)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(max_length=5000, blank=True)
    #: The addresses an IP or CIDR value covers, as ``Indicator.range_low``/``range_high``
    #: (sortable text; empty for other types): containment is a range comparison.
    range_low = models.CharField(max_length=33, blank=True, default="")
    range_high = models.CharField(max_length=33, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["feed", "event_uuid", "correlation_digest"], name="feed_value_once"
            ),
            models.CheckConstraint(
                condition=Q(tlp__in=[t.value for t in FEED_TLPS]), name="feed_indicator_tlp"
            ),
        ]
        indexes = [
            models.Index(fields=["correlation_digest64"], name="feed_indicator_digest64"),
            models.Index(fields=["range_low"], condition=Q(type="cidr"), name="feed_network_range"),
            models.Index(
                fields=["range_low"],
                condition=Q(type__in=["ipv4", "ipv6"]),
                name="feed_address_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.value} in {self.feed_id}"


class FeedMatch(models.Model):
    """An engagement's indicator also found in a feed (recorded once per indicator and feed).

    It is shown to whoever may read the engagement's indicator and the feed (every federation
    reader): the feed side is federation-wide, so the match tells nobody more than that.
    """

    id = uuid_primary_key()
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="+")
    #: The feed's value (``same``: the indicator's own; ``within``: the network holding the
    #: indicator, or the address or network inside the indicator's network).
    correlation_key = models.TextField(max_length=MAX_URL_LENGTH + 20)
    relation = models.CharField(
        max_length=8, choices=CorrelationRelation.choices, default=CorrelationRelation.SAME
    )
    event_uuid = models.UUIDField()
    event_info = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["indicator", "feed"], name="feed_match_once")
        ]

    def __str__(self) -> str:
        return f"{self.correlation_key} in {self.feed_id}"
