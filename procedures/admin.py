"""Django admin for the procedure catalog, and a read-only view of ordered procedures."""

from django.contrib import admin

from backoffice.admin import ReadOnlyModelAdmin
from procedures.models import ProcedureOrder, ProcedureType


@admin.register(ProcedureType)
class ProcedureTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category", "default_minutes", "supervision_if_not_competent", "is_active")
    list_filter = ("category", "is_active", "supervision_required_if_not_competent")
    search_fields = ("code", "name")
    filter_horizontal = ("required_equipment",)

    @admin.display(
        description="supervision if not competent", boolean=True, ordering="supervision_required_if_not_competent"
    )
    def supervision_if_not_competent(self, obj: ProcedureType) -> bool:
        return obj.supervision_required_if_not_competent


@admin.register(ProcedureOrder)
class ProcedureOrderAdmin(ReadOnlyModelAdmin):
    """Orders are placed on the handoff page and move on through procedures.services."""

    list_display = ("handoff", "procedure_type", "status", "created_at", "created_by")
    list_filter = ("status", "procedure_type__category")
    list_select_related = ("handoff__patient", "procedure_type", "created_by")
    search_fields = (
        "^handoff__patient__mrn",
        "handoff__patient__family_name",
        "handoff__patient__given_name",
        "procedure_type__code",
    )
    date_hierarchy = "created_at"
