from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the sign-in signal receivers (session clocks, security log).
        import backoffice.auth  # noqa: F401
        from backoffice.roles import sync_roles

        # Runs once per migrate, after every app's permissions exist.
        post_migrate.connect(sync_roles, sender=self, dispatch_uid="backoffice.sync_roles")
