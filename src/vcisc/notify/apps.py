from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "vcisc.notify"
    label = "notify"
    verbose_name = "Notifications"
