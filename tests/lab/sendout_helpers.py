"""A reference lab set up as an admin would: its dialect profile, orderables and questions."""

from lab.models import AskAtOrderEntry, DialectProfile, Orderable, ReferenceLab, TestDefinition

NATIONAL = "National reference lab, HL7 2.5.1 LRI"


def reference_lab(*short_names: str, name: str = "Quest Diagnostics West", profile: str = NATIONAL) -> ReferenceLab:
    """A lab on MLLP, taking these send-out tests (all send-outs by default) under its own codes."""
    lab = ReferenceLab.objects.create(
        name=name,
        address="33608 Ortega Hwy, San Juan Capistrano, CA 92675",
        clia_number="05D0642827",
        their_application="QLS",
        their_facility=f"{name[:3].upper()}-LAB",
        our_facility="CLINIC",
        receiving_application="QLS",
        receiving_facility=f"{name[:3].upper()}-LAB",
        transport=ReferenceLab.Transport.MLLP,
        mllp_host="127.0.0.1",
        mllp_port=2575,
        profile=DialectProfile.objects.get(name=profile),
        courier="Lab courier, route 12",
        turnaround_hours=24,
    )
    tests = TestDefinition.objects.filter(performed=TestDefinition.Performed.SEND_OUT)
    if short_names:
        tests = tests.filter(short_name__in=short_names)
    for number, test in enumerate(tests.order_by("id"), start=1):
        orderable = Orderable.objects.create(
            reference_lab=lab, test=test, lab_code=f"{number:04d}{test.short_name[:2].upper()}", lab_name=test.name
        )
        if test.short_name == "Lipids":
            AskAtOrderEntry.objects.create(
                orderable=orderable,
                loinc_code="49541-6",
                question="Fasting status",
                choices=[["Y", "Yes", "HL70136"], ["N", "No", "HL70136"]],
            )
    return lab
