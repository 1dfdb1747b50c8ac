from django.apps import AppConfig


class SpecimensConfig(AppConfig):
    name = "specimens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject

        # A refused specimen URL names the specimen's patient in the access log.
        register_subject("specimen", _patient_of_specimen)


def _patient_of_specimen(ref: str) -> int | None:
    from specimens.models import Specimen

    return Specimen.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()
