from django.apps import AppConfig


class FederationConfig(AppConfig):
    name = "vcisc.federation"
    label = "federation"
    verbose_name = "Federation directory"
