from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "vcisc.web"
    label = "web"
    verbose_name = "Web console"
