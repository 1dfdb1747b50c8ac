from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "lab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import register_open_item_counter
        from lab.selectors import open_test_count
        from lab.services import SPECIMEN_LISTENER
        from specimens.hooks import register_specimen_listener

        register_open_item_counter(self.label, open_test_count)
        # A collected, failed or rejected specimen moves the tests it serves.
        register_specimen_listener(self.label, SPECIMEN_LISTENER)
        register_subject("call", _patient_of_call)
        register_subject("testorder", _patient_of_test_order)
        register_subject("result", _patient_of_result)
        register_subject("criticalcall", _patient_of_critical_call)


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
