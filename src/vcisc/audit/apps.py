from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "vcisc.audit"
    label = "audit"
    verbose_name = "Audit trail"
