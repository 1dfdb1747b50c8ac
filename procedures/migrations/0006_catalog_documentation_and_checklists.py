"""What each catalog procedure needs (consent, time-out), what it documents, and its checklist steps."""

from django.db import migrations

# code: (consent, time-out, site, laterality modifier, findings, medication, vitals, specimen)
FLAGS = {
    "69209": (False, False, True, True, True, False, "", False),
    "36415": (False, False, True, False, False, False, "", True),
    "96372": (True, False, True, False, False, True, "", False),
    "90471": (True, False, True, False, False, True, "", False),
    "99211": (False, False, True, False, True, False, "", False),
    "12001": (True, True, True, False, True, True, "", False),
    "S0630": (False, False, True, False, True, False, "", False),
    "93000": (False, False, False, False, True, False, "", False),
    "10005": (True, True, True, False, True, True, "before_after", True),
    "94640": (False, False, False, False, True, True, "before_after", False),
    "94760": (False, False, False, False, False, False, "once", False),
    "51702": (True, False, False, False, True, False, "", False),
    "94010": (False, False, False, False, True, False, "", False),
    "86580": (True, False, True, False, False, True, "", False),
    "99173": (False, False, False, False, True, False, "", False),
}

STEPS = {
    "69209": (
        "Inspect both canals with the otoscope",
        "Confirm no perforation, ear surgery or tubes",
        "Irrigate with body-temperature water",
        "Re-inspect the canal and eardrum",
        "Ask about dizziness, pain or hearing change",
    ),
    "36415": (
        "Match the labels and order to the patient",
        "Ask about fainting and bleeding problems",
        "Tourniquet on under 1 minute; clean the site",
        "Draw the tubes in the order of draw",
        "Pressure and bandage; check for bleeding",
    ),
    "96372": (
        "Confirm allergies with the patient",
        "Check the rights: patient, drug, dose, route, time",
        "Check the lot's expiry date",
        "Inject at the documented site",
        "Needle into the sharps container",
        "Watch for a reaction before the patient leaves",
    ),
    "90471": (
        "Give the Vaccine Information Statement",
        "Screen for contraindications",
        "Check the vaccine lot and expiry date",
        "Inject at the documented site",
        "Observe for 15 minutes",
    ),
    "99211": (
        "Remove the old dressing",
        "Inspect for redness, swelling, drainage, odour",
        "Clean the wound",
        "Apply a new dressing",
        "Teach wound care and warning signs",
    ),
    "12001": (
        "Confirm tetanus status",
        "Anesthetize the site",
        "Irrigate and explore the wound",
        "Close the wound",
        "Dressing, and wound care instructions",
    ),
    "S0630": (
        "Check the wound has healed",
        "Clean the site",
        "Remove the sutures, counting them",
        "Steri-strips if the edges gape",
    ),
    "93000": (
        "Prepare the skin; place the 10 electrodes",
        "Enter the patient's details on the machine",
        "Record with the patient lying still",
        "Check the tracing for artefact",
        "Hand the tracing to the ordering clinician",
    ),
    "10005": (
        "Confirm the site with the ordering clinician",
        "Prepare a sterile field",
        "Local anesthetic",
        "Aspirate under ultrasound guidance",
        "Label slides and containers in front of the patient",
        "Pressure and dressing",
    ),
    "94640": (
        "SpO₂ and breath sounds before",
        "Medication into the nebulizer cup",
        "Coach slow breaths until the cup is empty",
        "SpO₂ and breath sounds after",
    ),
    "94760": ("Patient seated and rested 5 minutes", "Probe on a warm finger, nail polish removed"),
    "51702": (
        "Explain; ensure privacy",
        "Sterile technique: clean and insert",
        "Inflate the balloon and secure the catheter",
        "Note the urine returned",
        "Drainage bag below the bladder",
    ),
    "94010": (
        "No chest pain, recent heart attack or surgery",
        "Explain and demonstrate the effort",
        "Three acceptable efforts",
        "Record the best FEV1 and FVC",
    ),
    "86580": (
        "Screen for a previous positive test or BCG",
        "Inject 0.1 mL intradermally, raising a wheal",
        "Book the reading in 48 to 72 hours",
    ),
    "99173": ("Patient 20 feet from the chart", "Test each eye, then both", "Record the smallest line read"),
}


def forwards(apps, schema_editor):
    ProcedureType = apps.get_model("procedures", "ProcedureType")
    ProcedureStep = apps.get_model("procedures", "ProcedureStep")
    for procedure in ProcedureType.objects.filter(code__in=FLAGS):
        consent, timeout, site, modifier, findings, medication, vitals, specimen = FLAGS[procedure.code]
        procedure.consent_required = consent
        procedure.timeout_required = timeout
        procedure.documents_site = site
        procedure.laterality_modifier = modifier
        procedure.documents_findings = findings
        procedure.documents_medication = medication
        procedure.vitals = vitals
        procedure.documents_specimen = specimen
        procedure.save()
        if not ProcedureStep.objects.filter(procedure_type=procedure).exists():
            ProcedureStep.objects.bulk_create(
                ProcedureStep(procedure_type=procedure, position=n, text=text)
                for n, text in enumerate(STEPS[procedure.code], start=1)
            )


class Migration(migrations.Migration):
    dependencies = [("procedures", "0005_procedure_order_uuid_unique")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
