from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "backoffice.fhir"
    label = "fhir"
    verbose_name = "FHIR API"
    default_auto_field = "django.db.models.BigAutoField"
