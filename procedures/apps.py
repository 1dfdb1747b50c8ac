from django.apps import AppConfig


class ProceduresConfig(AppConfig):
    name = "procedures"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import register_open_item_counter
        from procedures.selectors import open_procedure_count, patient_of_procedure

        register_open_item_counter(self.label, open_procedure_count)
        register_subject("procedure", patient_of_procedure)
