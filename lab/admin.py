"""Django admin for the lab test catalog, and a read-only view of ordered tests."""

from django.apps import apps
from django.contrib import admin

from backoffice.admin import AccessLoggedAdmin, HistoryAdmin, ReadOnlyModelAdmin
from lab.models import (
    Analyte,
    AskAtOrderEntry,
    ControlLot,
    CriticalCall,
    CriticalCallAttempt,
    CriticalCallEvent,
    DialectProfile,
    EscalationStep,
    InboundMessage,
    InboundMessageEvent,
    Kit,
    KitLot,
    Orderable,
    OutboundMessage,
    QCRule,
    QCRun,
    RecollectionCall,
    RecollectionCallEvent,
    ReferenceLab,
    ReferenceRange,
    Result,
    ResultEvent,
    SendOut,
    SendOutEvent,
    Shipment,
    ShipmentEvent,
    TestDefinition,
    TestOrder,
    TestOrderEvent,
)

LAB_DIRECTOR_NOTE = (
    "Seeded with common adult values as a starting point only: each clinic's laboratory director "
    "reviews and sets its own reference ranges and critical limits before patient testing."
)


class AnalyteInline(admin.TabularInline):
    model = Analyte
    extra = 0
    fields = (
        "position",
        "loinc_code",
        "name",
        "short_name",
        "result_type",
        "unit",
        "decimals",
        "choices",
        "normal_choices",
        "reportable_low",
        "reportable_high",
    )
    show_change_link = True


class QCRuleInline(admin.StackedInline):
    model = QCRule
    extra = 0


@admin.register(TestDefinition)
class TestDefinitionAdmin(admin.ModelAdmin):
    list_display = (
        "loinc_code",
        "name",
        "short_name",
        "performed",
        "clia_complexity",
        "requires_verification",
        "specimen_type",
        "container",
        "is_active",
    )
    list_filter = ("performed", "clia_complexity", "specimen_type", "container", "is_active")
    list_select_related = ("specimen_type", "container")
    search_fields = ("loinc_code", "name", "short_name")
    inlines = (AnalyteInline, QCRuleInline)


class ReferenceRangeInline(admin.TabularInline):
    model = ReferenceRange
    extra = 0
    fields = ("sex", "age_min_days", "age_max_days", "low", "high", "critical_low", "critical_high")


@admin.register(Analyte)
class AnalyteAdmin(admin.ModelAdmin):
    """A test's reported result with its ranges; ranges and critical limits are the lab director's."""

    list_display = ("loinc_code", "name", "test", "result_type", "unit", "reportable_low", "reportable_high")
    list_filter = ("result_type", "test")
    list_select_related = ("test",)
    search_fields = ("loinc_code", "name", "short_name")
    inlines = (ReferenceRangeInline,)
    fields = (
        "test",
        "position",
        "loinc_code",
        "name",
        "short_name",
        "result_type",
        "unit",
        "decimals",
        "choices",
        "normal_choices",
        "reportable_low",
        "reportable_high",
    )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        # The lab director's note above the form and its ranges.
        return super().changeform_view(
            request, object_id, form_url, {**(extra_context or {}), "subtitle": LAB_DIRECTOR_NOTE}
        )


@admin.register(ReferenceRange)
class ReferenceRangeAdmin(admin.ModelAdmin):
    list_display = ("analyte", "sex", "age_min_days", "age_max_days", "low", "high", "critical_low", "critical_high")
    list_filter = ("sex", "analyte__test")
    list_select_related = ("analyte",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "analyte",
                    "sex",
                    "age_min_days",
                    "age_max_days",
                    "low",
                    "high",
                    "critical_low",
                    "critical_high",
                ),
                "description": LAB_DIRECTOR_NOTE,
            },
        ),
    )


class KitLotInline(admin.TabularInline):
    model = KitLot
    extra = 0
    fields = ("lot_number", "expiry_date", "received_on", "opened_on", "is_active")


@admin.register(Kit)
class KitAdmin(admin.ModelAdmin):
    list_display = ("manufacturer", "name", "is_active")
    list_filter = ("is_active",)
    search_fields = ("manufacturer", "name")
    filter_horizontal = ("tests",)
    inlines = (KitLotInline,)


@admin.register(KitLot)
class KitLotAdmin(admin.ModelAdmin):
    list_display = ("kit", "lot_number", "expiry_date", "received_on", "opened_on", "is_active")
    list_filter = ("is_active", "kit")
    list_select_related = ("kit",)
    search_fields = ("lot_number", "kit__name")


@admin.register(QCRule)
class QCRuleAdmin(admin.ModelAdmin):
    list_display = ("test", "frequency", "every_n_days", "shift_hours")
    list_select_related = ("test",)


@admin.register(ControlLot)
class ControlLotAdmin(admin.ModelAdmin):
    list_display = (
        "test",
        "analyte",
        "level",
        "lot_number",
        "expiry_date",
        "expected_value",
        "target_mean",
        "target_sd",
        "is_active",
    )
    list_filter = ("test", "level", "is_active")
    list_select_related = ("test", "analyte")
    search_fields = ("lot_number",)


@admin.register(QCRun)
class QCRunAdmin(ReadOnlyModelAdmin):
    """QC runs are entered at the bench (lab.qc); kept as run, never edited."""

    list_display = (
        "performed_at",
        "control_lot",
        "kit_lot",
        "value_numeric",
        "value_text",
        "passed",
        "westgard",
        "performed_by",
    )
    list_filter = ("passed", "control_lot__test")
    list_select_related = ("control_lot__test", "kit_lot__kit", "performed_by")
    date_hierarchy = "performed_at"


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    list_display = ("position", "target", "person", "due_minutes")
    list_select_related = ("person",)


@admin.register(Result)
class ResultAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Results move only through the bench's services; a released one is corrected by amendment."""

    audit_what = "lab result"
    list_display = ("entered_at", "patient", "analyte", "value_numeric", "value_text", "flag", "status")
    list_filter = ("status", "flag", "analyte__test")
    list_select_related = ("patient", "analyte")
    search_fields = ("^patient__mrn", "patient__family_name")
    date_hierarchy = "entered_at"


@admin.register(ResultEvent)
class ResultEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "lab result event"
    audit_ref = "result.uuid"
    list_display = ("at", "result", "action", "from_status", "to_status", "actor", "note")
    list_select_related = ("result__patient", "result__analyte", "actor")


@admin.register(CriticalCall)
class CriticalCallAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "critical call"
    list_display = ("opened_at", "patient", "result", "clinician", "step", "due_at", "status")
    list_filter = ("status",)
    list_select_related = ("patient", "result__analyte", "clinician")


@admin.register(CriticalCallAttempt)
class CriticalCallAttemptAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "critical call attempt"
    audit_ref = "call.uuid"
    list_display = ("at", "call", "called_by", "contact_name", "contact_role", "outcome")
    list_select_related = ("call__patient", "call__result__analyte", "called_by")


@admin.register(CriticalCallEvent)
class CriticalCallEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "critical call event"
    audit_ref = "call.uuid"
    list_display = ("at", "call", "action", "actor", "note")
    list_select_related = ("call__patient", "call__result__analyte", "actor")


@admin.register(TestOrder)
class TestOrderAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Orders are placed on the handoff page and move on through lab.services."""

    audit_what = "test order"
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
    audit_ref = "call.uuid"
    list_display = ("at", "call", "action", "actor", "note")
    list_select_related = ("call__patient", "actor")


@admin.register(apps.get_model("lab", "ResultHistory"))
class ResultHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    """Every change of a result before its release, with who made it (a released one is amended instead)."""

    audit_what = "lab result history"
    audit_ref = ""


# --- Send-outs: reference labs and what they are asked for (catalogs), and the desk's records (read-only) ---


@admin.register(DialectProfile)
class DialectProfileAdmin(admin.ModelAdmin):
    """Add a profile for a new lab interface here, without code: see docs/hl7-profiles.md."""

    list_display = ("name", "where_the_mrn_is", "where_the_keys_are")
    fields = ("name", "description", "definition")

    @admin.display(description="Our MRN")
    def where_the_mrn_is(self, obj: DialectProfile) -> str:
        try:
            return ", then ".join(place.describe() for place in obj.as_profile().mrn)
        except ValueError as exc:
            return f"Invalid: {exc}"

    @admin.display(description="Placer · accession")
    def where_the_keys_are(self, obj: DialectProfile) -> str:
        try:
            profile = obj.as_profile()
        except ValueError:
            return ""
        return f"{', '.join(profile.placer)} · {', '.join(profile.accession)}"


@admin.register(ReferenceLab)
class ReferenceLabAdmin(admin.ModelAdmin):
    list_display = ("name", "clia_number", "their_facility", "hl7_version", "transport", "profile", "is_active")
    list_filter = ("is_active", "transport", "hl7_version")
    list_select_related = ("profile",)
    search_fields = ("name", "clia_number", "their_facility")
    fieldsets = (
        (None, {"fields": ("name", "address", "phone", "clia_number", "courier", "turnaround_hours", "is_active")}),
        ("Its messages", {"fields": ("their_application", "their_facility", "profile")}),
        (
            "Our messages to it",
            {"fields": ("our_application", "our_facility", "receiving_application", "receiving_facility")},
        ),
        (
            "HL7 and transport",
            {"fields": ("hl7_version", "processing_id", "transport", "mllp_host", "mllp_port", "drop_folder")},
        ),
    )


class AskAtOrderEntryInline(admin.TabularInline):
    model = AskAtOrderEntry
    extra = 0
    fields = ("position", "loinc_code", "question", "value_type", "choices", "required")


@admin.register(Orderable)
class OrderableAdmin(admin.ModelAdmin):
    list_display = ("lab_code", "lab_name", "test", "reference_lab", "turnaround_hours", "is_default")
    list_filter = ("reference_lab", "is_default")
    list_select_related = ("test", "reference_lab")
    search_fields = ("lab_code", "lab_name", "test__name", "test__loinc_code")
    inlines = (AskAtOrderEntryInline,)


@admin.register(AskAtOrderEntry)
class AskAtOrderEntryAdmin(admin.ModelAdmin):
    list_display = ("question", "loinc_code", "orderable", "value_type", "required")
    list_select_related = ("orderable__reference_lab",)
    list_filter = ("orderable__reference_lab",)


@admin.register(SendOut)
class SendOutAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Send-outs move through the desk's services only."""

    audit_what = "send-out"
    list_display = ("placer_number", "orderable", "reference_lab", "status", "sent_at", "expected_by")
    list_filter = ("status", "reference_lab")
    list_select_related = ("orderable__reference_lab", "reference_lab", "order__handoff")
    search_fields = ("=placer_number",)


@admin.register(SendOutEvent)
class SendOutEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "send-out event"
    audit_ref = "send_out.uuid"
    list_display = ("at", "send_out", "action", "from_status", "to_status", "actor", "note")
    list_select_related = ("send_out__order__handoff", "send_out__orderable", "actor")


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyModelAdmin):
    list_display = ("pickup_at", "reference_lab", "handling", "courier", "status")
    list_filter = ("status", "reference_lab", "handling")
    list_select_related = ("reference_lab",)


@admin.register(ShipmentEvent)
class ShipmentEventAdmin(ReadOnlyModelAdmin):
    list_display = ("at", "shipment", "action", "actor", "note")
    list_select_related = ("shipment__reference_lab", "actor")


@admin.register(OutboundMessage)
class OutboundMessageAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "HL7 order message"
    audit_ref = "send_out.uuid"
    list_display = ("created_at", "control_id", "kind", "send_out", "status", "attempts", "ack_code")
    list_filter = ("status", "kind")
    list_select_related = ("send_out__order__handoff", "send_out__orderable")


@admin.register(InboundMessageEvent)
class InboundMessageEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """What was done with each message (lab.sendouts.intake); the admin role holds no permission on it."""

    audit_what = "inbound message events"
    audit_ref = "message.uuid"
    list_display = ("at", "message", "action", "actor")
    list_filter = ("action",)
    list_select_related = ("message__send_out__order__handoff", "actor")


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyModelAdmin):
    """Every message received, whole. Its patient is read from the raw text, so only the desk's queue pages
    (which log what they show) display it; here the list shows headers and outcomes only."""

    list_display = ("received_at", "channel", "sending_facility", "control_id", "message_type", "outcome")
    list_filter = ("outcome", "channel", "reference_lab")
    exclude = ("raw",)
