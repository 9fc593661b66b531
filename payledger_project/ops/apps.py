from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "payledger_project.ops"
    label = "ops"
    verbose_name = "Operations"
