from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    """The access log's integrity: the checkpoints (tamper evidence) and the database roles' grants."""

    name = "backoffice.audit"
    label = "audit"
    verbose_name = "Audit integrity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit import checks  # noqa: F401 - registers the database check

        # Every migrate run as the owner role applies the app role's grants again, so a table a
        # migration adds gets its privileges in the same deploy (backoffice.audit.dbroles).
        post_migrate.connect(_grant_app_role, sender=self, dispatch_uid="audit.grant_app_role")
        # Starts the every-minute checkpoint (backoffice.audit.tasks) if no run of it is pending.
        post_migrate.connect(_schedule_seal, sender=self, dispatch_uid="audit.schedule_seal")


def _grant_app_role(using: str = "default", **kwargs: object) -> None:
    from django.conf import settings
    from django.db import connections

    from backoffice.audit.dbroles import apply_grants

    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user = %s, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
            [settings.DB_OWNER_ROLE, settings.DB_APP_ROLE],
        )
        as_owner, app_exists = cursor.fetchone()
    if as_owner and app_exists:
        apply_grants(connection, owner=settings.DB_OWNER_ROLE, app=settings.DB_APP_ROLE)


def _schedule_seal(using: str = "default", **kwargs: object) -> None:
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    from backoffice.audit.tasks import schedule_seal

    if DBTaskResult._meta.db_table in connections[using].introspection.table_names():
        schedule_seal()
