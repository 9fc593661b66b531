"""Per-seller lists on (seller, order) indexes (issue 29).

The charges list filtered by seller and ordered by id had only a one-column seller
index, so PostgreSQL walked the primary key backwards and discarded everyone
else's charges. The new indexes are built CONCURRENTLY, so charges go on while
they build on a large table; then the one-column seller indexes, which the
(seller, ...) indexes serve as well, are dropped CONCURRENTLY too: one index fewer
for each charge, journal row and event to write. Only the index goes: an AlterField
would also drop and re-add each table's foreign key to sellers, scanning the whole
table while charges wait.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# Django's names for the seller foreign keys' own indexes (the table and the column, hashed).
ONE_COLUMN_SELLER_INDEXES = [
    ("payments_event", "payments_event_seller_id_4b71fb3b"),
    ("payments_phonecharge", "payments_phonecharge_seller_id_c5935705"),
    ("payments_transaction", "payments_transaction_seller_id_acb053ff"),
]


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
        migrations.SeparateDatabaseAndState(
            state_operations=[
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
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}"'
                        f' ON "{table}" ("seller_id")'
                    ),
                )
                for table, index in ONE_COLUMN_SELLER_INDEXES
            ],
        ),
    ]
