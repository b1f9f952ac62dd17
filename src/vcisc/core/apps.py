from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "vcisc.core"
    label = "core"
    verbose_name = "VCISC"
