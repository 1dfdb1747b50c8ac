"""Django admin for the specimen catalog, and read-only views of specimens and their custody.

Admin keeps the catalog: specimen types (SNOMED CT), containers, rejection reasons and each
station's label printers. Specimens, their events and label prints are written by specimens.services
from the app's pages, so they are shown here read-only and access-logged.
"""

from typing import Any, ClassVar

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest

from backoffice.admin import AccessLoggedAdmin, HistoryAdmin, ReadOnlyModelAdmin
from specimens.models import (
    Container,
    LabelPrint,
    LabelPrinter,
    RejectionReason,
    Specimen,
    SpecimenEvent,
    SpecimenType,
)

PATIENT_SEARCH = ("^patient__mrn", "patient__family_name", "patient__given_name")


@admin.register(SpecimenType)
class SpecimenTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "snomed_code", "collection_method", "is_active")
    list_filter = ("collection_method", "is_active")
    search_fields = ("name", "code", "snomed_code")


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "cap_colour", "additive", "draw_order", "volume_ml", "min_volume_ml", "handling")
    list_filter = ("kind", "handling", "is_active")
    search_fields = ("name", "code", "additive")
    ordering = ("draw_order", "name")


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "hl7_table_0490", "is_active")
    list_filter = ("hl7_table_0490", "is_active")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # HL7 table 0490's codes are the standard's; the clinic adds its own beside them.
        return ("code", "hl7_table_0490") if obj is not None and obj.hl7_table_0490 else ()


@admin.register(LabelPrinter)
class LabelPrinterAdmin(admin.ModelAdmin):
    list_display = ("name", "station", "transport", "host", "port", "width_in", "height_in", "dpi", "is_active")
    list_filter = ("transport", "dpi", "is_active", "station")
    list_select_related = ("station",)


class _SpecimenRecordAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    search_fields: ClassVar[tuple[str, ...]] = ("^accession", *PATIENT_SEARCH)


@admin.register(Specimen)
class SpecimenAdmin(_SpecimenRecordAdmin):
    audit_what = "specimen"
    list_display = ("accession", "patient", "container", "status", "location", "labelled_at", "collected_at")
    list_filter = ("status", "location", "container")
    list_select_related = ("patient", "container")
    date_hierarchy = "labelled_at"


@admin.register(SpecimenEvent)
class SpecimenEventAdmin(_SpecimenRecordAdmin):
    audit_what = "specimen event"
    audit_ref = "specimen.uuid"
    search_fields: ClassVar[tuple[str, ...]] = ("^specimen__accession", "^specimen__patient__mrn")
    list_display = ("at", "specimen", "action", "from_status", "to_status", "from_location", "to_location", "actor")
    list_filter = ("action", "to_status")
    list_select_related = ("specimen", "specimen__container", "actor")


@admin.register(LabelPrint)
class LabelPrintAdmin(_SpecimenRecordAdmin):
    audit_what = "specimen label print"
    audit_ref = "specimen.uuid"
    search_fields: ClassVar[tuple[str, ...]] = ("^specimen__accession", "^specimen__patient__mrn")
    list_display = ("printed_at", "specimen", "printed_by", "output", "printer", "reason")
    list_select_related = ("specimen", "specimen__container", "printed_by", "printer")


@admin.register(apps.get_model("specimens", "SpecimenHistory"))
class SpecimenHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "specimen history"
    audit_ref = ""
