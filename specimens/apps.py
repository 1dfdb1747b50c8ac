from django.apps import AppConfig


class SpecimensConfig(AppConfig):
    name = "specimens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import register_handoff_cancel_handler, register_scanned_id_reader
        from specimens.services import specimens_close_for_cancel

        # A refused specimen URL names the specimen's patient in the access log.
        register_subject("specimen", _patient_of_specimen)
        # A specimen label scanned into a field that takes an MRN (the access-log search) names its patient.
        register_scanned_id_reader(self.label, _patient_of_accession)
        # A cancelled handoff's labelled tubes are recorded as not collected.
        register_handoff_cancel_handler(self.label, specimens_close_for_cancel)


def _patient_of_specimen(ref: str) -> int | None:
    from specimens.models import Specimen

    return Specimen.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


def _patient_of_accession(scanned: str) -> int | None:
    from specimens.accession import is_valid, normalise
    from specimens.models import Specimen

    if not is_valid(scanned):
        return None
    return Specimen.objects.filter(accession=normalise(scanned)).values_list("patient_id", flat=True).first()
