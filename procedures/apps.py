from django.apps import AppConfig


class ProceduresConfig(AppConfig):
    name = "procedures"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.audit.subjects import register_subject
        from backoffice.hooks import (
            register_equipment_needed,
            register_handoff_cancel_handler,
            register_open_items,
            register_under_way,
        )
        from procedures.selectors import equipment_needed, open_procedures, patient_of_procedure, procedures_under_way
        from procedures.services import procedures_cancel_blockers, procedures_close_for_cancel

        register_open_items(self.label, open_procedures)
        register_under_way(self.label, procedures_under_way)
        register_equipment_needed(self.label, equipment_needed)
        register_handoff_cancel_handler(self.label, procedures_close_for_cancel, blockers=procedures_cancel_blockers)
        register_subject("procedure", patient_of_procedure)
