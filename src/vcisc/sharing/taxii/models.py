"""TAXII 2.1 storage: one row per object version, a clock per collection, status resources.

Objects are stored as rows holding their serialised JSON, so that a page of ``GET objects``
is a keyset query and a concatenation of text (TAXII 2.1 §3.5; the benchmark of issue 5).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from vcisc.engagements.models import Engagement
from vcisc.federation.models import Organisation
from vcisc.tlp import Tlp

__all__ = ["CollectionState", "StatusResource", "StixObject"]

_TLPS = [t.value for t in Tlp]


class StixObject(models.Model):
    """One version of one STIX object in one collection (TAXII 2.1 §5.4, §5.7).

    ``collection`` is the collection's id: the engagement's id for an engagement collection
    (``engagement`` is then set too), or the fixed id of a federation collection.
    ``date_added`` is server time, unique and increasing within a collection (the
    :class:`CollectionState` clock hands it out), so ``added_after`` and ``next`` are exact.
    ``tlp`` is the strictest TLP of the object's markings and decides who reads it;
    ``latest``/``first`` say whether this is the newest/oldest version of ``stix_id``.
    ``item_id`` names the engagement item this row was materialised from, or the indicator a
    posted object became (then ``posted`` is true and the item is never materialised again).
    """

    id = models.BigAutoField(primary_key=True)
    collection = models.UUIDField()
    engagement = models.ForeignKey(
        Engagement, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stix_id = models.CharField(max_length=300)
    type = models.CharField(max_length=250)
    spec_version = models.CharField(max_length=10, default="2.1")
    version = models.DateTimeField()
    date_added = models.DateTimeField()
    tlp = models.CharField(max_length=12, choices=Tlp.choices())
    latest = models.BooleanField(default=True)
    first = models.BooleanField(default=True)
    item_id = models.UUIDField(null=True, blank=True)
    posted = models.BooleanField(default=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "stix_id", "version"], name="taxii_object_version_once"
            ),
            models.UniqueConstraint(
                fields=["collection", "date_added"], name="taxii_date_added_unique"
            ),
            models.CheckConstraint(condition=Q(tlp__in=_TLPS), name="taxii_object_tlp_valid"),
        ]
        indexes = [
            models.Index(fields=["collection", "latest", "date_added"], name="taxii_latest"),
            models.Index(fields=["collection", "stix_id"], name="taxii_stix_id"),
            models.Index(fields=["collection", "item_id"], name="taxii_item"),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} @ {self.version:%Y-%m-%dT%H:%M:%S.%fZ} in {self.collection}"


class CollectionState(models.Model):
    """Per collection: the last ``date_added`` handed out (locked while adding, so that dates
    stay unique and increasing), and for an engagement collection the marker of the
    workspace state last materialised (see :mod:`vcisc.sharing.taxii.store`)."""

    collection = models.UUIDField(primary_key=True)
    last_added = models.DateTimeField(null=True, blank=True)
    marker = models.CharField(max_length=200, blank=True)
    materialised_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"collection {self.collection}"


class StatusResource(models.Model):
    """The outcome of one ``POST objects`` (TAXII 2.1 §4.3.1), shown to the user who posted it.

    Objects are added synchronously, so a status is ``complete`` when it is first returned;
    clients poll it all the same, as the specification lets them.
    """

    id = models.UUIDField(primary_key=True)
    collection = models.UUIDField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    request_timestamp = models.DateTimeField()
    total_count = models.PositiveIntegerField()
    success_count = models.PositiveIntegerField()
    failure_count = models.PositiveIntegerField()
    #: ``[{"id": …, "version": …, "message": …}]`` (§4.3.1 status details).
    successes = models.JSONField(default=list)
    failures = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"status {self.id}"
