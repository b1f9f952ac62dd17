from django.apps import AppConfig


class FeedsConfig(AppConfig):
    name = "vcisc.feeds"
    label = "feeds"
    verbose_name = "Federation feeds"
    default_auto_field = "django.db.models.BigAutoField"
