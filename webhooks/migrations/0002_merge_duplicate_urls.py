"""Before each seller's URL becomes unique: the seller's oldest endpoint for a URL
stays, subscribed to every event type its copies wanted, and the copies go (with
their delivery attempts), so each event reaches that URL once."""

from django.db import migrations


def duplicates_merge(apps, schema_editor):
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    kept: dict[tuple[int, str], object] = {}
    for endpoint in WebhookEndpoint.objects.order_by("pk").iterator():
        first = kept.setdefault((endpoint.seller_id, endpoint.url), endpoint)
        if first is endpoint:
            continue
        wanted = sorted(set(first.event_types) | set(endpoint.event_types))
        if wanted != first.event_types:
            first.event_types = wanted
            first.save(update_fields=["event_types"])
        endpoint.delete()


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [migrations.RunPython(duplicates_merge, migrations.RunPython.noop)]
