from django.apps import AppConfig


class EngagementsConfig(AppConfig):
    name = "vcisc.engagements"
    label = "engagements"
    verbose_name = "Engagements"
