from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.db.models import OuterRef, Q

if TYPE_CHECKING:
    from django.db.models import QuerySet


class SpecimensConfig(AppConfig):
    name = "specimens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import register_handoff_cancel_handler, register_patient_work, register_scanned_id_reader
        from specimens.services import specimens_close_for_cancel

        # A refused specimen URL names the specimen's patient in the access log.
        register_subject("specimen", _patient_of_specimen)
        # A specimen label scanned into a field that takes an MRN (the access-log search) names its patient.
        register_scanned_id_reader(self.label, _patient_of_accession)
        # A cancelled handoff's labelled tubes are recorded as not collected.
        register_handoff_cancel_handler(self.label, specimens_close_for_cancel)
        # A lab technician's patient search finds the patients whose specimens the lab has.
        register_patient_work(self.label, _patients_with_specimens)


def _patient_of_specimen(ref: str) -> int | None:
    from specimens.models import Specimen

    return Specimen.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_of_accession(scanned: str) -> int | None:
    from specimens.accession import is_valid, normalise
    from specimens.models import Specimen

    if not is_valid(scanned):
        return None
    return Specimen.objects.filter(accession=normalise(scanned)).values_list("patient_id", flat=True).first()


def _patients_with_specimens(since: datetime) -> "QuerySet[Any]":
    """The outer query's patient's specimens the lab still holds (drawn, not yet stored, shipped or
    disposed) or that changed since `since`."""
    from specimens.models import Specimen
    from specimens.workflow import SpecimenStatus as S

    in_hand = (S.COLLECTED, S.IN_TRANSIT, S.RECEIVED, S.IN_TESTING, S.DONE)
    return Specimen.objects.filter(patient=OuterRef("pk")).filter(
        Q(status__in=in_hand) | Q(status_changed_at__gte=since)
    )
