from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "payledger_project.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from payledger_project.ops import request_id  # noqa: F401  (connects its receivers)
