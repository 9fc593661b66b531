"""pghistory's context table (who, which path, which address: what the events
point at) refuses DELETE, and an UPDATE that would change a value already
written. pghistory itself updates a context while its request goes on, to add
what it learns (the API key's user once DRF has authenticated it), so adding a
key or filling a null is allowed; nothing else is."""

from django.db import migrations

APPEND_ONLY = """
CREATE FUNCTION audit_context_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'The audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END IF;
    IF NEW.id <> OLD.id OR NEW.created_at <> OLD.created_at OR EXISTS (
        SELECT 1 FROM jsonb_each(OLD.metadata) AS written
        WHERE written.value <> 'null'::jsonb
          AND NEW.metadata -> written.key IS DISTINCT FROM written.value
    ) THEN
        RAISE EXCEPTION 'The audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_context_append_only
    BEFORE UPDATE OR DELETE ON pghistory_context
    FOR EACH ROW EXECUTE FUNCTION audit_context_append_only();
"""

REMOVE = """
DROP TRIGGER audit_context_append_only ON pghistory_context;
DROP FUNCTION audit_context_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("pghistory", "0007_auto_20250421_0444"),
    ]

    operations = [migrations.RunSQL(APPEND_ONLY, REMOVE)]
