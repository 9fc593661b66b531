# Idempotency keys move from the seller to the user, so staff (who have no
# seller) can send them too. Keys still inside their replay window keep working.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def keys_to_their_sellers_users(apps, schema_editor):
    IdempotencyKey = apps.get_model("payments", "IdempotencyKey")
    Seller = apps.get_model("sellers", "Seller")
    IdempotencyKey.objects.update(
        user_id=models.Subquery(
            Seller.objects.filter(pk=models.OuterRef("seller_id")).values("user_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_phonecharge_reference"),
        ("sellers", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="idempotency_keys",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(keys_to_their_sellers_users, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="idempotencykey",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="idempotency_keys",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RemoveConstraint(model_name="idempotencykey", name="idempotencykey_seller_key"),
        migrations.RemoveField(model_name="idempotencykey", name="seller"),
        migrations.AddConstraint(
            model_name="idempotencykey",
            constraint=models.UniqueConstraint(
                fields=("user", "key"), name="idempotencykey_user_key"
            ),
        ),
    ]
