"""Every message has a key now (0003): make it required and unique."""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notify", "0003_backfill_deliveries")]

    operations = [
        migrations.AlterField(
            model_name="outboxmessage",
            name="key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
