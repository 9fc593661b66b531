from django.apps import AppConfig


class SecondFactorConfig(AppConfig):
    name = "payledger_project.second_factor"
    label = "second_factor"
    verbose_name = "Second factor"
