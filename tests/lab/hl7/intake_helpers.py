"""The corpus's three reference labs and their open orders, set up the way a clinic does it.

The labs are added as an admin would (a dialect profile each, the lab's test codes as orderables);
the orders the corpus reports on are brought in with ``import_open_send_outs`` (lab.sendouts.
carried_over), which keeps their placer numbers (``ORD-2026-000042``, ``0000123``) and accessions
as text: exactly what the results will be matched with.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from backoffice import roles
from backoffice.models import User
from lab.models import DialectProfile, InboundMessage, Orderable, ReferenceLab, SendOut, TestDefinition
from lab.sendouts.carried_over import COLUMNS, open_send_outs_import
from lab.sendouts.intake import Received, receive
from lab.workflow import IntakeChannel
from tests.factories import UserFactory

CORPUS = Path(__file__).parent / "corpus"

# name, MSH-3, MSH-4, profile, CLIA
LABS = {
    "acme": (
        "Acme Reference Laboratories",
        "ACMEREF",
        "ACMEREFLAB",
        "National reference lab, HL7 2.5.1 LRI",
        "05D0987654",
    ),
    "valley": ("Valley Pathology Associates", "LABLINK", "VALLEYPATH", "Legacy HL7 2.3 interface", "14D0111222"),
    "mercy": (
        "Mercy General Hospital Laboratory",
        "MERCYLIS",
        "MERCYGEN",
        "Hospital outreach LIS, HL7 2.3.1",
        "14D0456789",
    ),
}
# Send-out tests the catalog doesn't ship, by LOINC (short name, name). HbA1c is in-house in our
# catalog (4548-4), so the send-out one is ordered under the HPLC method's LOINC.
EXTRA_TESTS = {
    "17856-6": ("HbA1c send-out", "Hemoglobin A1c by HPLC (send-out)"),
    "62292-8": ("Vitamin D", "25-Hydroxyvitamin D"),
    "95941-1": ("Resp panel", "Respiratory pathogen panel (NAA)"),
    "24362-6": ("Renal panel", "Renal function panel"),
    "2823-3": ("Potassium", "Potassium, serum"),
    "2276-4": ("Ferritin", "Ferritin"),
    "2345-7": ("Glucose", "Glucose, serum"),
    "60567-5": ("Surg path", "Surgical pathology"),
}
# lab → (its code, our test's LOINC)
ORDERABLES = {
    "acme": [
        ("322000", "24323-8"),
        ("UCX", "630-4"),
        ("CBC", "58410-2"),
        ("RESP4", "95941-1"),
        ("RENAL", "24362-6"),
        ("VITD", "62292-8"),
        ("TSH", "3016-3"),
        ("HBA1C", "17856-6"),
    ],
    "valley": [("LIPID", "24331-1"), ("TSH", "3016-3"), ("K", "2823-3")],
    "mercy": [("CBC", "58410-2"), ("FERR", "2276-4"), ("GLU", "2345-7"), ("A1C", "17856-6"), ("SP", "60567-5")],
}
PATIENTS = {
    "M100001": ("Martinez", "Rosa Elena", "1980-02-14", "F"),
    "M100002": ("Okoye", "Daniel Chidi", "1975-07-30", "M"),
    "M100003": ("Whitfield", "Grace Anne", "1992-11-05", "F"),
    "M100004": ("Nowak", "Tomasz Piotr", "1958-04-22", "M"),
    "M100005": ("Redcloud", "Aiyana Mae", "2001-09-09", "F"),
    "M100006": ("Müller", "Jürgen", "1949-12-01", "M"),
}
# placer → (accession, lab, the lab's test code, MRN, collected at)
ORDERS = {
    "ORD-2026-000042": ("S000010019", "acme", "322000", "M100001", "2026-03-01 08:15"),
    "ORD-2026-000045": ("S000010023", "acme", "UCX", "M100001", "2026-03-05 09:30"),
    "ORD-2026-000046": ("S000010024", "acme", "CBC", "M100002", "2026-03-07 08:45"),
    "ORD-2026-000047": ("S000010025", "acme", "RESP4", "M100002", "2026-03-10 08:10"),
    "ORD-2026-000048": ("S000010026", "acme", "RENAL", "M100002", "2026-03-10 08:10"),
    "ORD-2026-000049": ("S000010027", "acme", "VITD", "M100004", "2026-03-08 11:00"),
    "ORD-2026-000050": ("S000010028", "acme", "TSH", "M100004", "2026-03-10 10:00"),
    "ORD-2026-000060": ("S000010040", "acme", "HBA1C", "M100005", "2026-03-04 10:15"),
    "0000123": ("S000010020", "valley", "LIPID", "M100002", "2026-03-03 07:15"),
    "0000124": ("S000010021", "valley", "TSH", "M100004", "2026-03-03 10:10"),
    "0000125": ("S000010022", "valley", "K", "M100006", "2026-03-04 08:15"),
    "ORD-2026-000051": ("S000010031", "mercy", "CBC", "M100003", "2026-03-08 07:15"),
    "ORD-2026-000052": ("S000010032", "mercy", "FERR", "M100003", "2026-03-08 07:15"),
    "ORD-2026-000053": ("S000010033", "mercy", "GLU", "M100003", "2026-03-09 08:00"),
    "ORD-2026-000054": ("S000010034", "mercy", "A1C", "M100003", "2026-03-09 08:00"),
    "ORD-2026-000055": ("S000010035", "mercy", "SP", "M100003", "2026-03-10 10:00"),
    "ORD-2026-000056": ("S000010036", "mercy", "SP", "M100003", "2026-03-13 11:00"),
}
PROVIDER = ("1234567893", "Shah", "Priya")


def corpus_labs() -> dict[str, ReferenceLab]:
    """The three labs the corpus comes from, each with its profile and its test codes."""
    cmp = TestDefinition.objects.get(loinc_code="24323-8")
    for loinc, (short, name) in EXTRA_TESTS.items():
        TestDefinition.objects.get_or_create(
            loinc_code=loinc,
            defaults={
                "name": name,
                "short_name": short,
                "performed": TestDefinition.Performed.SEND_OUT,
                "specimen_type": cmp.specimen_type,
                "container": cmp.container,
            },
        )
    labs = {}
    for key, (name, application, facility, profile, clia) in LABS.items():
        lab, _ = ReferenceLab.objects.get_or_create(
            name=name,
            defaults={
                "address": "1200 Research Blvd, Springfield, IL 62704",
                "clia_number": clia,
                "their_application": application,
                "their_facility": facility,
                "our_facility": "CLINIC",
                "receiving_application": application,
                "receiving_facility": facility,
                "transport": ReferenceLab.Transport.MLLP,
                "mllp_host": "127.0.0.1",
                "mllp_port": 2575,
                "profile": DialectProfile.objects.get(name=profile),
                "turnaround_hours": 48,
            },
        )
        labs[key] = lab
        for code, loinc in ORDERABLES[key]:
            test = TestDefinition.objects.get(loinc_code=loinc)
            Orderable.objects.get_or_create(
                reference_lab=lab,
                test=test,
                defaults={
                    "lab_code": code,
                    "lab_name": test.name,
                    "is_default": not Orderable.objects.filter(test=test, is_default=True).exists(),
                },
            )
    return labs


def csv_text(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in COLUMNS})
    return out.getvalue()


def order_row(placer: str) -> dict[str, str]:
    accession, lab, code, mrn, collected = ORDERS[placer]
    family, given, dob, sex = PATIENTS[mrn]
    npi, provider_family, provider_given = PROVIDER
    return {
        "mrn": mrn,
        "family_name": family,
        "given_name": given,
        "date_of_birth": dob,
        "sex": sex,
        "provider_npi": npi,
        "provider_family_name": provider_family,
        "provider_given_name": provider_given,
        "reference_lab": LABS[lab][0],
        "test": code,
        "placer_number": placer,
        "accession": accession,
        "collected_at": collected,
        "sent_at": collected.replace(collected[-5:], "16:00"),
    }


def desk_user() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def corpus_orders(*placers: str, by: User | None = None) -> dict[str, SendOut]:
    """The corpus's labs and these of its orders (all by default), imported as open send-outs."""
    corpus_labs()
    chosen = placers or tuple(ORDERS)
    open_send_outs_import(text=csv_text([order_row(p) for p in chosen]), by=by or desk_user(), source="corpus.csv")
    send_outs = SendOut.objects.filter(placer_number__in=chosen).select_related(
        "order__specimen", "order__handoff__patient", "order__handoff__ordering_clinician", "reference_lab"
    )
    return {s.placer_number: s for s in send_outs}


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def intake(name: str, *, channel: str = IntakeChannel.FILE, by: User | None = None) -> list[Received]:
    """A corpus file through the intake, as ``hl7_import`` reads it."""
    return receive(corpus_bytes(name), channel=channel, source=name, by=by)


def messages() -> list[InboundMessage]:
    return list(InboundMessage.objects.order_by("id"))


def held_message() -> InboundMessage:
    """A result on identity hold: Rosa Martinez's CMP order, reported for a ROSALIND born a year later.

    Rosa is imported under an MRN and an accession of her own here, so that a test's own M100001
    patient and S000010019 specimen are never met: the message finds her order by its placer number.
    """
    corpus_labs()
    row = order_row("ORD-2026-000042") | {"mrn": "M900042", "accession": "LEGACY-0019871"}
    open_send_outs_import(text=csv_text([row]), by=desk_user())
    [received] = intake("identity_mismatch.hl7")
    assert received.message.outcome == "identity_hold" and received.message.send_out is not None
    return received.message
