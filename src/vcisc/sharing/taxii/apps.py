from django.apps import AppConfig


class TaxiiConfig(AppConfig):
    name = "vcisc.sharing.taxii"
    label = "taxii"
    verbose_name = "TAXII 2.1"
    default_auto_field = "django.db.models.BigAutoField"
