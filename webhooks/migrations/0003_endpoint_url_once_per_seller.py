from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_merge_duplicate_urls")]

    operations = [
        migrations.AddConstraint(
            model_name="webhookendpoint",
            constraint=models.UniqueConstraint(
                fields=("seller", "url"), name="webhookendpoint_seller_url"
            ),
        ),
    ]
