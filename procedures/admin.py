"""Django admin for the procedure catalog, and read-only views of procedures and their records.

Admin keeps the catalog (types, checklists, equipment, documentation flags). Everything a procedure
accumulates (status, documentation, medications, addenda, events, charges, competencies) is written
by procedures.services from the app's pages, so it is shown here read-only and access-logged.
"""

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.admin import AccessLoggedAdmin, HistoryAdmin, ReadOnlyModelAdmin
from procedures.models import (
    Addendum,
    AllergyOverride,
    ChargeLine,
    Competency,
    DrugChargeLine,
    Medication,
    MedicationAdministration,
    MedicationError,
    MedicationPackage,
    OrderedMedication,
    ProcedureDocumentation,
    ProcedureEvent,
    ProcedureOrder,
    ProcedureStep,
    ProcedureType,
    StepCompletion,
    VitalSigns,
)

PATIENT_SEARCH = ("^handoff__patient__mrn", "handoff__patient__family_name", "handoff__patient__given_name")


def _through_order(field: str) -> str:
    """A handoff's patient search field, reached from a row pointing at the order."""
    return f"^order__{field[1:]}" if field.startswith("^") else f"order__{field}"


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Catalog -----------------------------------------------------------------------------------


class MedicationPackageInline(admin.TabularInline):
    model = MedicationPackage
    extra = 1
    fields = ("ndc", "gtin", "description")


@admin.register(MedicationPackage)
class MedicationPackageAdmin(admin.ModelAdmin):
    list_display = ("ndc", "gtin", "medication", "description")
    list_select_related = ("medication",)
    search_fields = ("ndc", "gtin", "medication__name")


@admin.register(Medication)
class MedicationAdmin(admin.ModelAdmin):
    """The clinic's drugs: what the allergy cross-check, the package scan and the drug charge line read."""

    list_display = (
        "name",
        "strength",
        "form",
        "route_list",
        "hcpcs_code",
        "billing_unit_label",
        "cvx_code",
        "is_active",
    )
    list_filter = ("is_active", "form")
    search_fields = ("name", "strength", "rxnorm_code", "hcpcs_code", "packages__ndc", "packages__gtin")
    filter_horizontal = ("ingredients",)
    list_select_related = ("administration_procedure",)
    inlines = (MedicationPackageInline,)
    fieldsets = (
        (
            None,
            {"fields": ("name", "strength", "form", "routes", "ingredients", "administration_procedure", "is_active")},
        ),
        ("Codes", {"fields": ("rxnorm_code", "cvx_code", "mvx_code")}),
        ("Billing", {"fields": ("hcpcs_code", "billing_unit_amount", "billing_unit")}),
    )

    @admin.display(description="routes")
    def route_list(self, obj: Medication) -> str:
        return ", ".join(obj.routes)

    @admin.display(description="billing unit")
    def billing_unit_label(self, obj: Medication) -> str:
        if obj.billing_unit_amount is None:
            return "per dose" if obj.hcpcs_code else "—"
        return f"per {obj.billing_unit_amount.normalize():f} {obj.billing_unit}"


class ProcedureStepInline(admin.TabularInline):
    model = ProcedureStep
    extra = 1
    fields = ("position", "text")
    ordering = ("position",)


@admin.register(ProcedureType)
class ProcedureTypeAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "category",
        "default_minutes",
        "supervision_if_not_competent",
        "consent_required",
        "timeout_required",
        "is_active",
    )
    list_filter = (
        "category",
        "is_active",
        "supervision_required_if_not_competent",
        "consent_required",
        "timeout_required",
    )
    search_fields = ("code", "name")
    filter_horizontal = ("required_equipment",)
    fieldsets = (
        (None, {"fields": ("code", "name", "category", "default_minutes", "is_active")}),
        ("Before starting", {"fields": ("supervision_required_if_not_competent", "required_equipment")}),
        ("Safety", {"fields": ("consent_required", "timeout_required")}),
        (
            "What the performer documents",
            {
                "fields": (
                    ("documents_site", "laterality_modifier"),
                    "documents_findings",
                    "documents_medication",
                    "vitals",
                    "documents_specimen",
                )
            },
        ),
    )
    inlines = (ProcedureStepInline,)

    @admin.display(
        description="supervision if not competent", boolean=True, ordering="supervision_required_if_not_competent"
    )
    def supervision_if_not_competent(self, obj: ProcedureType) -> bool:
        return obj.supervision_required_if_not_competent


@admin.register(ProcedureStep)
class ProcedureStepAdmin(admin.ModelAdmin):
    list_display = ("procedure_type", "position", "text")
    list_filter = ("procedure_type",)
    list_select_related = ("procedure_type",)
    search_fields = ("text", "procedure_type__name", "procedure_type__code")
    ordering = ("procedure_type__name", "position")


# --- Staff competency --------------------------------------------------------------------------


@admin.register(Competency)
class CompetencyAdmin(ReadOnlyModelAdmin):
    """Signed off by a supervisor on the competency page; counted by the services."""

    list_display = ("user", "procedure_type", "signed_off_by", "signed_off_at", "expires_on", "supervised_count")
    list_filter = ("procedure_type", "expires_on")
    list_select_related = ("user", "procedure_type", "signed_off_by")
    search_fields = ("user__username", "user__first_name", "user__last_name", "procedure_type__code")


# --- Ordered procedures and their records ------------------------------------------------------


class ProcedureEventInline(ReadOnlyInline):
    model = ProcedureEvent
    fields = ("at", "action", "from_status", "to_status", "actor", "note")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProcedureEvent]:
        return super().get_queryset(request).select_related("actor")


class AddendumInline(ReadOnlyInline):
    model = Addendum
    fields = ("created_at", "reason", "text", "author")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Addendum]:
        return super().get_queryset(request).select_related("author")


@admin.register(ProcedureOrder)
class ProcedureOrderAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Orders are placed on the handoff page and move on through procedures.services."""

    audit_what = "procedure order"
    audit_ref = "uuid"

    list_display = ("handoff", "procedure_type", "status", "performer", "supervision", "created_at")
    list_filter = ("status", "supervision", "procedure_type__category")
    list_select_related = ("handoff__patient", "procedure_type", "performer")
    search_fields = (*PATIENT_SEARCH, "procedure_type__code")
    date_hierarchy = "created_at"
    inlines = (ProcedureEventInline, AddendumInline)


class _PatientRecordAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """A record that belongs to one procedure, and so to one patient."""

    audit_ref = ""


@admin.register(ProcedureDocumentation)
class ProcedureDocumentationAdmin(_PatientRecordAdmin):
    audit_what = "procedure documentation"

    list_display = ("order", "version", "tolerance", "updated_by", "updated_at")
    list_select_related = ("order__handoff__patient", "order__procedure_type", "updated_by")
    search_fields = tuple(f"order__{field.lstrip('^')}" for field in PATIENT_SEARCH)


@admin.register(StepCompletion)
class StepCompletionAdmin(_PatientRecordAdmin):
    audit_what = "procedure checklist"

    list_display = ("documentation", "step", "done_by", "done_at")
    list_select_related = (
        "documentation__order__handoff__patient",
        "documentation__order__procedure_type",
        "step",
        "done_by",
    )


@admin.register(VitalSigns)
class VitalSignsAdmin(_PatientRecordAdmin):
    audit_what = "procedure vital signs"

    list_display = ("documentation", "phase", "summary", "taken_by", "taken_at")
    list_select_related = ("documentation__order__handoff__patient", "documentation__order__procedure_type", "taken_by")


@admin.register(MedicationAdministration)
class MedicationAdministrationAdmin(_PatientRecordAdmin):
    audit_what = "medication given"

    list_display = ("drug", "dose", "unit", "route", "lot_number", "expiry_date", "administered_by", "administered_at")
    list_filter = ("route",)
    list_select_related = ("documentation__order__handoff__patient", "administered_by")
    search_fields = ("drug", "lot_number")
    date_hierarchy = "administered_at"


@admin.register(MedicationError)
class MedicationErrorAdmin(_PatientRecordAdmin):
    audit_what = "medication entered in error"

    list_display = ("administration", "reason", "marked_by", "marked_at")
    list_select_related = ("administration__documentation__order__handoff__patient", "marked_by")


@admin.register(OrderedMedication)
class OrderedMedicationAdmin(_PatientRecordAdmin):
    audit_what = "medication ordered"

    list_display = ("order", "medication", "ordered_by", "ordered_at")
    list_select_related = ("order__handoff__patient", "order__procedure_type", "medication", "ordered_by")


@admin.register(AllergyOverride)
class AllergyOverrideAdmin(_PatientRecordAdmin):
    audit_what = "allergy override"

    list_display = ("overridden_at", "order", "medication", "conflicts", "reason", "stage", "overridden_by")
    list_filter = ("stage",)
    list_select_related = ("order__handoff__patient", "order__procedure_type", "medication", "overridden_by")
    date_hierarchy = "overridden_at"


@admin.register(DrugChargeLine)
class DrugChargeLineAdmin(_PatientRecordAdmin):
    audit_what = "drug charge line"

    list_display = ("charge", "code", "units", "ndc", "description")
    list_select_related = ("charge__patient",)
    search_fields = ("code", "ndc")


@admin.register(Addendum)
class AddendumAdmin(_PatientRecordAdmin):
    audit_what = "procedure addendum"

    list_display = ("order", "reason", "author", "created_at")
    list_filter = ("reason",)
    list_select_related = ("order__handoff__patient", "order__procedure_type", "author")


@admin.register(ProcedureEvent)
class ProcedureEventAdmin(_PatientRecordAdmin):
    audit_what = "procedure event"

    list_display = ("at", "order", "action", "from_status", "to_status", "actor", "note")
    list_filter = ("action", "to_status")
    list_select_related = ("order__handoff__patient", "order__procedure_type", "actor")
    # The MRN's "^" (starts with) goes in front of the whole path: "order__^handoff…" was a FieldError.
    search_fields = (*(_through_order(field) for field in PATIENT_SEARCH), "note")
    date_hierarchy = "at"


@admin.register(ChargeLine)
class ChargeLineAdmin(_PatientRecordAdmin):
    audit_what = "charge line"

    list_display = ("service_date", "code", "modifiers", "units", "patient", "performer", "ordering_clinician")
    list_filter = ("service_date", "code")
    list_select_related = ("patient", "performer", "ordering_clinician")
    search_fields = ("^patient__mrn", "patient__family_name", "code")
    date_hierarchy = "service_date"


# --- History -----------------------------------------------------------------------------------


@admin.register(apps.get_model("procedures", "ProcedureOrderHistory"))
class ProcedureOrderHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "procedure history"
    audit_ref = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The access log names each row's patient: join the way there instead of a query per row.
        return super().get_queryset(request).select_related("handoff")


@admin.register(apps.get_model("procedures", "ProcedureDocumentationHistory"))
class ProcedureDocumentationHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "procedure documentation history"
    audit_ref = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The access log names each row's patient: join the way there instead of a query per row.
        return super().get_queryset(request).select_related("order__handoff")


@admin.register(apps.get_model("procedures", "VitalSignsHistory"))
class VitalSignsHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "vital signs history"
    audit_ref = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The access log names each row's patient: join the way there instead of a query per row.
        return super().get_queryset(request).select_related("documentation__order__handoff")


@admin.register(apps.get_model("procedures", "CompetencyHistory"))
class CompetencyHistoryAdmin(HistoryAdmin):
    pass
