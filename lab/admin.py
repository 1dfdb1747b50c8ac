"""Django admin for the lab test catalog, and a read-only view of ordered tests."""

from django.contrib import admin

from backoffice.admin import AccessLoggedAdmin, ReadOnlyModelAdmin
from lab.models import RecollectionCall, RecollectionCallEvent, TestDefinition, TestOrder, TestOrderEvent


@admin.register(TestDefinition)
class TestDefinitionAdmin(admin.ModelAdmin):
    list_display = ("loinc_code", "name", "short_name", "performed", "specimen_type", "container", "is_active")
    list_filter = ("performed", "specimen_type", "container", "is_active")
    list_select_related = ("specimen_type", "container")
    search_fields = ("loinc_code", "name", "short_name")


@admin.register(TestOrder)
class TestOrderAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Orders are placed on the handoff page and move on through lab.services."""

    audit_what = "test order"
    audit_patient = "handoff.patient_id"
    audit_ref = "handoff.uuid"

    list_display = ("handoff", "test", "status", "created_at", "created_by")
    list_filter = ("status", "test__performed")
    list_select_related = ("handoff__patient", "test", "created_by")
    search_fields = (
        "^handoff__patient__mrn",
        "handoff__patient__family_name",
        "handoff__patient__given_name",
        "test__loinc_code",
        "test__short_name",
    )
    date_hierarchy = "created_at"


@admin.register(TestOrderEvent)
class TestOrderEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """What happened to each ordered test; written by lab.services only."""

    audit_what = "test order event"
    audit_patient = "order.handoff.patient_id"
    audit_ref = "order.handoff.uuid"

    list_display = ("at", "order", "action", "from_status", "to_status", "actor", "note")
    list_filter = ("action", "to_status")
    list_select_related = ("order__handoff", "order__test", "actor")
    search_fields = ("^order__handoff__patient__mrn", "order__test__short_name")


@admin.register(RecollectionCall)
class RecollectionCallAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Call-backs for specimens rejected after the patient left; closed on the Lab follow-ups page."""

    audit_what = "call-back"
    list_display = ("created_at", "patient", "tests_label", "clinician", "status", "outcome")
    list_filter = ("status",)
    list_select_related = ("patient", "clinician")
    search_fields = ("^patient__mrn", "patient__family_name")


@admin.register(RecollectionCallEvent)
class RecollectionCallEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "call-back event"
    audit_patient = "call.patient_id"
    audit_ref = "call.uuid"
    list_display = ("at", "call", "action", "actor", "note")
    list_select_related = ("call__patient", "actor")
