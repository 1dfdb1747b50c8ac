"""The send-out desk in a real browser: pack two tubes for a reference lab, print, hand over, see the ACKs.

Two patients' serum tubes wait at the desk for the same lab, refrigerated; one is a lipid panel whose
fasting status nobody asked yet. The lab technician answers it on the desk, opens a shipment for
the group, packs one tube by scanning its label and the other from the list, prints the manifest
and the requisitions, and hands the shipment to the courier. The task worker sends one ORM^O01 per
order to the lab's interface (a listener on 127.0.0.1 that answers AA), and the desk shows both
acknowledged.

Then the results come back: the lab's result file holds the lipid panel (one match) and a TSH for an
accession that is no order of ours. Uploaded at the desk, the lipids are filed and reach Dr Shah's
inbox with the lab that performed them; the unknown one waits in the unmatched queue, filed to no
chart, until the technician resolves it with a reason.
"""

import datetime as dt

import hl7
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from backoffice.models import Handoff, User
from lab.models import InboundMessage, OutboundMessage, ReferenceLab, SendOut
from lab.workflow import IntakeOutcome, MessageStatus
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import HandoffFactory, PatientFactory, StationFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import fake_lab, point_at, with_npi
from tests.lab.sendouts.pdf_text import pages
from tests.specimens.helpers import confirm, received, tests

pytestmark = pytest.mark.browser


def at_desk(*, patient_name: tuple[str, str], mrn: str, test: str, clinician: User, ma: User, lab_tech: User):  # type: ignore[no-untyped-def]
    """A patient's send-out tube, drawn and received at the send-out desk, the way the app gets it there."""
    from backoffice.services import handoff_assign_station, handoff_claim, handoff_verify_identity
    from lab.services import test_orders_add, tests_start_collection
    from specimens.workflow import Location

    family, given = patient_name
    patient = PatientFactory(mrn=mrn, family_name=family, given_name=given, date_of_birth=dt.date(1968, 4, 11))
    handoff = HandoffFactory(
        patient=patient,
        ordering_clinician=clinician,
        created_by=clinician,
        clinical_note="Fasting since 8 pm." if test == "Lipids" else "",
    )
    Handoff.objects.filter(pk=handoff.pk).update(diagnosis_codes=["E78.5"] if test == "Lipids" else ["R53.83"])
    test_orders_add(handoff=handoff, tests=tests(test), by=clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=mrn)
    [tube] = tests_start_collection(handoff=handoff, by=ma)
    confirm(tube, ma)
    return received(tube, ma=ma, lab_tech=lab_tech, at=Location.SEND_OUT_DESK)


def result_file(*, lipids: SendOut, lab: ReferenceLab) -> bytes:
    """What Meridian's interface drops a day later: the lipid panel, final, then a TSH for an accession
    that is no order of ours (someone else's clinic), both as the national 2.5.1 profile reads them."""
    placer, accession = lipids.placer_number, lipids.order.specimen.accession
    sender = f"MSH|^~\\&|{lab.their_application}|{lab.their_facility}|BACKOFFICE|CLINIC"
    performer = "||||||||Meridian Reference Laboratories^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0642827"
    lines = [
        f"{sender}|20260412093000-0400||ORU^R01^ORU_R01|MRL-0412-0001|P|2.5.1",
        "PID|1||M610001^^^CLINIC^MR||OKAFOR^GRACE||19680411|F",
        f"ORC|RE|{placer}^CLINIC|MRL-88123^QLS|{accession}^CLINIC",
        f"OBR|1|{placer}^CLINIC|MRL-88123^QLS|24331-1^Lipid panel^LN^0001LI^Lipid panel^L|||20260411081500-0400"
        "|||||||||||||||20260412092000-0400|||F",
        f"OBX|1|NM|2093-3^Cholesterol [Mass/volume] in Serum or Plasma^LN||242|mg/dL^^UCUM|<200|H|||F{performer}",
        f"OBX|2|NM|2571-8^Triglyceride [Mass/volume] in Serum or Plasma^LN||138|mg/dL^^UCUM|<150|N|||F{performer}",
        f"OBX|3|NM|2085-9^HDL Cholesterol [Mass/volume] in Serum or Plasma^LN||51|mg/dL^^UCUM|>39|N|||F{performer}",
        f"OBX|4|NM|13457-7^LDL Cholesterol calculated^LN||163|mg/dL^^UCUM|<100|H|||F{performer}",
        "NTE|1|L|Fasting specimen as stated on the requisition.",
        f"{sender}|20260412093001-0400||ORU^R01^ORU_R01|MRL-0412-0002|P|2.5.1",
        "PID|1||M777001^^^CLINIC^MR||PARK^JUNE||19900101|F",
        "ORC|RE|99999912^CLINIC|MRL-88124^QLS|S999999912^CLINIC",
        "OBR|1|99999912^CLINIC|MRL-88124^QLS|3016-3^TSH^LN|||20260411090000-0400|||||||||||||||20260412092000-0400|||F",
        f"OBX|1|NM|3016-3^TSH^LN||2.10|m[IU]/L^^UCUM|0.45-4.50|N|||F{performer}",
    ]
    return "\r".join(lines).encode() + b"\r"


def test_the_desk_packs_prints_and_sends_two_orders_the_lab_acknowledges(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician: User,
    medical_assistant: User,
    lab_tech: User,
) -> None:
    with_npi(clinician)
    lab = reference_lab("Lipids", "TSH", name="Meridian Reference Laboratories")
    lipids = at_desk(
        patient_name=("Okafor", "Grace"), mrn="M610001", test="Lipids", clinician=clinician, ma=medical_assistant,
        lab_tech=lab_tech,
    )  # fmt: skip
    tsh = at_desk(
        patient_name=("Lindqvist", "Erik"), mrn="M610002", test="TSH", clinician=clinician, ma=medical_assistant,
        lab_tech=lab_tech,
    )  # fmt: skip
    page = screen.page

    screen.login("lab")
    page.get_by_role("link", name="Send-outs").click()
    group = page.locator(".desk-group", has_text="Meridian Reference Laboratories")
    expect(group).to_contain_text("Refrigerated (2 to 8 °C) · 2 tubes")
    row = group.locator("tbody tr", has_text="OKAFOR, Grace")
    expect(row).to_contain_text("Fasting status: not answered; needed before it can leave")
    screen.shot("so01-desk-waiting")
    screen.assert_accessible()

    # The lab's question, answered on the desk.
    row.get_by_label("Fasting status").select_option(label="Yes")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text(f"{lipids.accession} Lipids: Fasting status: Yes.")
    expect(group.locator("tbody tr", has_text="OKAFOR, Grace")).not_to_contain_text("not answered")

    # A shipment for the group: lab and temperature filled in, the courier and pickup time to check.
    group.get_by_role("link", name="New shipment for these").click()
    expect(page.get_by_label("Reference lab", exact=True)).to_have_value(str(lab.pk))
    expect(page.get_by_label("Temperature")).to_have_value("refrigerated")
    page.get_by_label("Courier").fill("Meridian courier, route 14")
    page.get_by_role("button", name="Open the shipment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("to Meridian Reference Laboratories")

    # One tube scanned (the scanner types the label and Enter), the other packed from the list.
    page.get_by_label("Scan a tube to pack it").fill(lipids.accession)
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text(f"{lipids.accession} (Lipids) packed")
    page.locator("tbody tr", has_text=tsh.accession).get_by_role("button", name="Pack").click()
    expect(page.locator(".messages")).to_contain_text(f"{tsh.accession} (TSH) packed")
    expect(page.get_by_role("button", name="3. Handed to the courier")).to_be_enabled()
    screen.shot("so02-shipment-packed")
    screen.assert_accessible()

    with page.expect_download() as manifest:
        page.get_by_role("button", name="1. Print the manifest").click()
    assert manifest.value.suggested_filename.startswith("manifest-SH-")
    [sheet] = pages(manifest.value.path().read_bytes())
    assert lipids.accession in sheet and tsh.accession in sheet and "OKAFOR, Grace" in sheet
    with page.expect_download() as requisitions:
        page.get_by_role("button", name="2. Print 2 requisitions").click()
    assert len(pages(requisitions.value.path().read_bytes())) == 2

    with fake_lab() as interface:
        point_at(lab, interface)
        page.get_by_role("button", name="3. Handed to the courier").click()
        expect(page.locator(".messages")).to_contain_text("2 orders sent to Meridian Reference Laboratories")
        screen.shot("so03-handed-over")
        # The task worker (make run starts one; here, one batch) sends each order over MLLP.
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    assert len(interface.received) == 2
    placers = {str(hl7.parse(text).segments("ORC")[0][2][0][0]) for text in interface.received}
    assert placers == set(SendOut.objects.values_list("placer_number", flat=True))
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.ACCEPTED}

    page.get_by_role("link", name="← Send-out desk").click()
    sent = page.locator("table.sent-table")
    for name in ("OKAFOR, Grace", "LINDQVIST, Erik"):
        expect(sent.locator("tbody tr", has_text=name)).to_contain_text("Acknowledged AA")
    expect(page.locator(".desk-group")).to_have_count(0)
    screen.shot("so04-desk-acknowledged")
    screen.assert_accessible()

    sent.locator("tbody tr", has_text="OKAFOR, Grace").get_by_role("link", name="Lipids").click()
    expect(page.locator("body")).to_contain_text("Order acknowledged by the lab")
    page.get_by_text("The message as sent").click()
    expect(page.locator("pre.hl7-text").first).to_contain_text("ORC|NW|")
    screen.shot("so05-send-out")
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # A day later the lab's result file comes back: uploaded at the desk, one filed, one unmatched.
    page.get_by_role("link", name="← Send-out desk").click()
    page.get_by_role("link", name="Results from labs: upload and latest").click()
    [lipids_order] = SendOut.objects.filter(order__specimen=lipids).select_related("order__specimen")
    page.get_by_label("Result file from a lab").set_input_files(
        files=[
            {"name": "meridian-0412.hl7", "mimeType": "text/plain", "buffer": result_file(lipids=lipids_order, lab=lab)}
        ]
    )
    page.get_by_role("button", name="Upload and file").click()
    expect(page.locator(".messages")).to_contain_text("meridian-0412.hl7: 2 messages: 1 filed, 1 unmatched.")
    latest = page.locator("table.inbound-recent")
    expect(latest.locator("tbody tr", has_text="MRL-0412-0001")).to_contain_text("OKAFOR, Grace")
    expect(latest.locator("tbody tr", has_text="MRL-0412-0002")).to_contain_text("99999912 / S999999912")
    screen.shot("so06-results-uploaded")
    screen.assert_accessible()
    filed = InboundMessage.objects.get(control_id="MRL-0412-0001")
    assert (filed.outcome, filed.send_out, filed.observations_filed) == (IntakeOutcome.MATCHED, lipids_order, 4)

    # The unknown one: kept whole, filed to no chart, until resolved with a reason.
    page.get_by_role("link", name="Unmatched 1").click()
    row = page.locator("table.inbound-queue tbody tr", has_text="MRL-0412-0002")
    expect(row).to_contain_text("PARK, JUNE")
    screen.shot("so07-unmatched-queue")
    screen.assert_accessible()
    row.get_by_role("link", name="Work it").click()
    page.get_by_label("Why nothing is filed").fill("Not our patient: Meridian resent it to the right clinic")
    screen.shot("so08-unmatched-message")
    screen.assert_accessible()
    page.get_by_role("button", name="Resolve with this reason").click()
    # Back to the queue for the next one: this one is worked.
    expect(page.locator(".messages")).to_contain_text("Resolved: MRL-0412-0002 stays stored; nothing was filed.")
    expect(page.locator("table.inbound-queue")).to_contain_text("No unmatched result waits.")
    unmatched = InboundMessage.objects.get(control_id="MRL-0412-0002")
    assert unmatched.resolved_by == lab_tech and unmatched.results.count() == 0 and unmatched.send_out is None
    assert unmatched.resolution == "Not our patient: Meridian resent it to the right clinic"
    screen.assert_no_console_errors()
    screen.logout()

    # The lipids are in the ordering clinician's inbox, with the lab that performed them.
    screen.login("doc")
    page.get_by_role("link", name="Results inbox").click()
    row = page.locator("tr.inbox-row", has_text="OKAFOR, Grace").filter(has_text="Cholesterol 242 mg/dL")
    expect(row).to_contain_text("Performed at Meridian Reference Laboratories")
    expect(row.locator(".result-flag")).to_contain_text("H")
    expect(page.locator("tr.inbox-row", has_text="OKAFOR, Grace")).to_have_count(4)
    screen.shot("so09-clinician-inbox")
    screen.assert_accessible()
    screen.assert_no_console_errors()
