from django.apps import AppConfig


class SpecimensConfig(AppConfig):
    name = "specimens"
    default_auto_field = "django.db.models.BigAutoField"
