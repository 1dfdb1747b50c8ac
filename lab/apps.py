from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LabConfig(AppConfig):
    name = "lab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import (
            register_handoff_cancel_handler,
            register_open_items,
            register_patient_left,
            register_patient_work,
        )
        from lab.selectors import left_behind, open_tests, patients_in_lab_work
        from lab.services import SPECIMEN_LISTENER, tests_cancel_blockers, tests_close_for_cancel, tests_patient_left
        from specimens.hooks import register_specimen_listener

        register_open_items(self.label, open_tests)
        # A collected, failed or rejected specimen moves the tests it serves.
        register_specimen_listener(self.label, SPECIMEN_LISTENER)
        # A cancelled handoff's tests and send-outs are cancelled with it (after specimens' tubes).
        register_handoff_cancel_handler(self.label, tests_close_for_cancel, blockers=tests_cancel_blockers)
        # A patient who leaves with a result still running, or a tube to draw again: the clinician calls them.
        register_patient_left(self.label, tests_patient_left, pending=left_behind)
        # A lab technician's patient search finds the patients whose tests and send-outs the lab has.
        register_patient_work(self.label, patients_in_lab_work)
        register_subject("call", _patient_of_call)
        register_subject("testorder", _patient_of_test_order)
        register_subject("result", _patient_of_result)
        register_subject("criticalcall", _patient_of_critical_call)
        register_subject("sendout", _patient_of_send_out)
        register_subject("shipment", _patient_of_shipment)
        register_subject("inboundmessage", _patient_of_inbound_message)
        # Starts the every-minute critical-call escalation (lab.criticals.tasks) unless a run is pending.
        post_migrate.connect(_schedule_escalation, sender=self, dispatch_uid="lab.schedule_escalation")
        # And the send-outs' overdue check (lab.sendouts.tasks), every five minutes.
        post_migrate.connect(_schedule_send_out_check, sender=self, dispatch_uid="lab.schedule_send_out_check")


def _patient_of_call(ref: str) -> int | None:
    from lab.models import RecollectionCall

    return RecollectionCall.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_of_test_order(ref: str) -> int | None:
    from lab.models import TestOrder

    return TestOrder.objects.filter(uuid=ref).values_list("handoff__patient_id", flat=True).first()


def _patient_of_result(ref: str) -> int | None:
    from lab.models import Result

    return Result.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_of_critical_call(ref: str) -> int | None:
    from lab.models import CriticalCall

    return CriticalCall.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_of_send_out(ref: str) -> int | None:
    from lab.models import SendOut

    return SendOut.objects.filter(uuid=ref).values_list("order__handoff__patient_id", flat=True).first()


def _patient_of_shipment(ref: str) -> int | None:
    """A shipment holds several patients' tubes: a refusal names the first packed (by accession)."""
    from lab.models import SendOut

    return (
        SendOut.objects.filter(shipment__uuid=ref)
        .order_by("order__specimen__accession", "id")
        .values_list("order__handoff__patient_id", flat=True)
        .first()
    )


def _patient_of_inbound_message(ref: str) -> int | None:
    from lab.sendouts.inbound.selectors import patient_of_message

    return patient_of_message(ref)


def _schedule_escalation(using: str = "default", **kwargs: object) -> None:
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    from lab.criticals.tasks import schedule_escalation

    # A partial migrate may leave the task table unbuilt.
    if DBTaskResult._meta.db_table in connections[using].introspection.table_names():
        schedule_escalation()


def _schedule_send_out_check(using: str = "default", **kwargs: object) -> None:
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    from lab.sendouts.tasks import schedule_overdue_send_outs

    if DBTaskResult._meta.db_table in connections[using].introspection.table_names():
        schedule_overdue_send_outs()
