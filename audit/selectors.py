from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_event_list(*, since: datetime, until: datetime) -> QuerySet[AuditEvent]:
    """The trail's events in [since, until), oldest first."""
    return AuditEvent.objects.filter(pgh_created_at__gte=since, pgh_created_at__lt=until).order_by(
        "pgh_created_at", "pgh_model", "pgh_id"
    )
