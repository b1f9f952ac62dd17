from django.apps import AppConfig


class AssistanceConfig(AppConfig):
    name = "vcisc.assistance"
    label = "assistance"
    verbose_name = "Requests for assistance"
