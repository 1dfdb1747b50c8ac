from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_save


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the signal receivers: sign-in (session clocks, security log), the account-change log's,
        # and the sessions' (a new password or a deactivation ends the account's sessions).
        import backoffice.accounts.auth
        import backoffice.accounts.changes
        import backoffice.accounts.sessions  # noqa: F401
        from backoffice.audit.subjects import register_subject
        from backoffice.roles import sync_roles
        from backoffice.text import strip_bidi_controls

        # No bidirectional control characters in any text the app's models save (backoffice.text).
        pre_save.connect(strip_bidi_controls, dispatch_uid="backoffice.strip_bidi_controls")
        register_subject("handoff", _patient_of_handoff)
        register_subject("patient", _patient_by_uuid)

        # Runs once per migrate, after every app's permissions exist.
        post_migrate.connect(sync_roles, sender=self, dispatch_uid="backoffice.sync_roles")
        # Starts the every-minute overdue check (backoffice.tasks) if no run of it is pending; every
        # deploy migrates, so the chain is (re)started on each one. Idempotent.
        post_migrate.connect(_schedule_overdue_check, sender=self, dispatch_uid="backoffice.schedule_overdue_check")


def _patient_of_handoff(ref: str) -> int | None:
    from backoffice.models import Handoff

    return Handoff.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_by_uuid(ref: str) -> int | None:
    from backoffice.models import Patient

    return Patient.objects.filter(uuid=ref).values_list("pk", flat=True).first()


def _schedule_overdue_check(using: str = "default", **kwargs: object) -> None:
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    from backoffice.tasks import schedule_overdue_check

    # A partial migrate (e.g. `migrate backoffice 0004`) may leave the task table unbuilt.
    if DBTaskResult._meta.db_table in connections[using].introspection.table_names():
        schedule_overdue_check()
