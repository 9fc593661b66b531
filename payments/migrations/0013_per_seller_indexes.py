"""Per-seller lists on (seller, order) indexes (issue 29).

The charges list filtered by seller and ordered by id had only a one-column seller
index, so PostgreSQL walked the primary key backwards and discarded everyone
else's charges. The new indexes are built CONCURRENTLY, so charges go on while
they build on a large table; then the one-column seller indexes, which the
(seller, ...) indexes serve as well, are dropped: one index fewer for each charge,
journal row and event to write.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0012_event_webhook_test"),
        ("sellers", "0002_api_keys"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="phonecharge",
            index=models.Index(fields=["seller", "id"], name="phonecharge_seller_id"),
        ),
        AddIndexConcurrently(
            model_name="phonecharge",
            index=models.Index(fields=["seller", "created_at"], name="phonecharge_seller_created"),
        ),
        migrations.AlterField(
            model_name="event",
            name="seller",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="sellers.seller",
            ),
        ),
        migrations.AlterField(
            model_name="phonecharge",
            name="seller",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="phone_charges",
                to="sellers.seller",
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="seller",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transactions",
                to="sellers.seller",
            ),
        ),
    ]
