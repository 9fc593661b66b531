from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    name = "payledger_project.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from payledger_project.ops import request_id  # noqa: F401  (connects its receivers)
        from payledger_project.ops.logs import migrations_applied_log

        post_migrate.connect(migrations_applied_log, dispatch_uid="migrations_applied_log")
