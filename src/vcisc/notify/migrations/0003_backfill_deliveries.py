"""Give messages queued before delivery existed a key, a TLP and their deliveries."""

import uuid

from django.db import migrations


def _backfill(apps, schema_editor):
    """Messages queued before delivery existed: give each its own idempotency key, the TLP of
    its request (RED if unknown), and — while still pending — one delivery per channel, so that
    the first worker delivers them."""
    Message = apps.get_model("notify", "OutboxMessage")
    Delivery = apps.get_model("notify", "Delivery")
    Rfa = apps.get_model("assistance", "RequestForAssistance")
    tlps = dict(Rfa.objects.values_list("pk", "tlp"))
    for msg in Message.objects.all().iterator():
        msg.key = uuid.uuid4()
        msg.tlp = tlps.get(msg.rfa_id, "red")
        channels = [c for c in msg.channels if c in ("email", "webhook")]
        if msg.status == "pending" and not channels:
            msg.status = "no-channel"
        msg.save(update_fields=["key", "tlp", "status"])
        if msg.status == "pending":
            Delivery.objects.bulk_create(
                Delivery(
                    message=msg,
                    channel=channel,
                    created_at=msg.created_at,
                    next_attempt_at=msg.created_at,
                )
                for channel in channels
            )


class Migration(migrations.Migration):
    dependencies = [("notify", "0002_delivery")]

    operations = [migrations.RunPython(_backfill, migrations.RunPython.noop)]
