"""Signing secrets stored in clear are encrypted with the newest of
PAYLEDGER_WEBHOOK_SECRET_KEYS (webhooks/fields.py): the column becomes text
(a token is longer than the secret), each secret is encrypted, and the field
then encrypts and decrypts by itself."""

from django.db import migrations, models

import webhooks.fields


def secrets_encrypt(apps, schema_editor):
    # Here the field is still plain text: the rows are read and written as stored.
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.only("pk", "secret").iterator():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret=webhooks.fields.secret_encrypt(endpoint.secret)
        )


def secrets_decrypt(apps, schema_editor):
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.only("pk", "secret").iterator():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret=webhooks.fields.secret_decrypt(endpoint.secret)
        )


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0003_endpoint_url_once_per_seller")]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint", name="secret", field=models.TextField()
        ),
        migrations.RunPython(secrets_encrypt, secrets_decrypt),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=webhooks.fields.EncryptedTextField(),
        ),
    ]
