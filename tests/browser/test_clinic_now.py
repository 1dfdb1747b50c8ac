"""In the clinic now, in a real browser: a realistic mix of fifteen patients, STAT first, allergies and needs
loud; filtered by station; the 15-second refresh keeps the focus and the scroll; "patient left" recorded
from the board sends the running result to the clinician's follow-ups. Accessible, no CSP errors."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice import services
from backoffice.models import Handoff
from backoffice.workflow import Priority
from lab.models import RecollectionCall
from procedures.services import procedure_orders_add
from specimens import services as specimen_services
from tests.browser.conftest import Screen
from tests.factories import HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.lab.sendouts.helpers import packed
from tests.procedures.helpers import new_ma, new_supervisor, procedure_type
from tests.specimens.helpers import collected, reason, received, tests, verified_handoff

pytestmark = pytest.mark.browser


def _ago(handoff: Handoff, minutes: int) -> None:
    Handoff.objects.filter(pk=handoff.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes))


def a_clinic_day(ma: object, lab_tech: object) -> dict[str, Handoff]:
    """Fifteen patients: waiting, at stations, POC tests running and back, send-outs, a recollection."""
    made: dict[str, Handoff] = {}
    for i in range(7):
        handoff = HandoffFactory(
            patient=PatientFactory(
                given_name=f"Wait{i:02}", family_name="Queue", allergies="Penicillin" if i == 1 else ""
            ),
            priority=Priority.STAT if i == 3 else Priority.ROUTINE,
            interpreter_needed=i == 2,
            interpreter_language="Spanish" if i == 2 else "",
            isolation=Handoff.Isolation.DROPLET if i == 4 else Handoff.Isolation.NONE,
        )
        procedure_orders_add(handoff=handoff, procedure_types=[procedure_type("36415")], by=handoff.ordering_clinician)
        _ago(handoff, 5 + 4 * i)
        made[f"waiting{i}"] = handoff
    draw = StationFactory(code="draw-1", name="Draw 1")
    # Rapid strep running at the bench, the patient still at Draw 1 (nothing else needs them).
    strep, [swab] = collected("Rapid strep", ma=ma)  # type: ignore[arg-type]
    services.handoff_start(handoff=Handoff.objects.get(pk=strep.pk), by=ma)  # type: ignore[arg-type]
    received(swab, ma=ma, lab_tech=lab_tech)  # type: ignore[arg-type]
    specimen_services.specimen_start_testing(specimen=swab, by=lab_tech)  # type: ignore[arg-type]
    made["strep"] = strep
    # A recollection, STAT.
    cup, [urine] = collected("Urine dipstick", ma=ma)  # type: ignore[arg-type]
    Handoff.objects.filter(pk=cup.pk).update(priority=Priority.STAT)
    services.handoff_start(handoff=Handoff.objects.get(pk=cup.pk), by=ma)  # type: ignore[arg-type]
    received(urine, ma=ma, lab_tech=lab_tech)  # type: ignore[arg-type]
    specimen_services.specimen_reject(specimen=urine, reason=reason("RC"), by=lab_tech)  # type: ignore[arg-type]
    made["recollect"] = cup
    # A send-out packaged for the reference lab, the patient still being worked.
    _, [serum] = packed("TSH", ma=ma, lab_tech=lab_tech)  # type: ignore[arg-type]
    made["send_out"] = Handoff.objects.get(pk=serum.handoff_id)
    # Identified at Draw 1, two tests to collect.
    made["at_draw"] = verified_handoff("Urine hCG", "POC glucose", ma=ma, station=draw)  # type: ignore[arg-type]
    for key, minutes in (("strep", 48), ("recollect", 33), ("send_out", 41), ("at_draw", 12)):
        _ago(made[key], minutes)
    # Four more waiting, to make fifteen.
    for i in range(4):
        handoff = HandoffFactory(patient=PatientFactory(given_name=f"Late{i}", family_name="Arrival"))
        handoff.test_orders.create(test=tests("PT/INR")[0], created_by=handoff.ordering_clinician)
        _ago(handoff, 2 + i)
    return made


def test_the_board_shows_the_clinic_filters_refreshes_in_place_and_records_a_patient_who_left(
    screen: Screen,
) -> None:
    ma = new_ma(username="ma", first_name="Ana", last_name="Reyes")
    new_supervisor(username="boss", first_name="Sam", last_name="Okafor")
    lab_tech = UserFactory(username="lab", role="Lab technician")
    made = a_clinic_day(ma, lab_tech)
    page = screen.page
    page.set_viewport_size({"width": 1366, "height": 768})

    # The supervisor's look: everyone, STAT first.
    screen.login("boss")
    screen.goto("/clinic-now/")
    rows = page.locator(".clinic-now-table tbody tr")
    expect(rows).to_have_count(15)
    expect(rows.nth(0)).to_contain_text("STAT")
    expect(rows.nth(1)).to_contain_text("STAT")
    expect(page.locator(f"#now-{made['recollect'].uuid}")).to_contain_text("recollect")
    expect(page.locator(f"#now-{made['strep'].uuid}")).to_contain_text("running")
    expect(page.locator(f"#now-{made['send_out'].uuid}")).to_contain_text("packaged")
    expect(page.locator(f"#now-{made['waiting1'].uuid}")).to_contain_text("Allergies: Penicillin")
    screen.shot("clinic-now-supervisor")
    page.screenshot(path=str(screen.shot("clinic-now-supervisor").with_name("clinic-now-supervisor-viewport.png")))
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # Filtered to Draw 1: only the patient there.
    page.get_by_label("Station").select_option("draw-1")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/clinic-now/?station=draw-1*")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Start work")
    expect(rows.first).to_contain_text("POC glucose")
    screen.shot("clinic-now-filtered")
    screen.logout()

    # The MA's look, with the refresh: focus on a row's patient link below the first screen stays.
    page.clock.install()
    screen.login("ma")
    screen.goto("/clinic-now/")
    expect(rows).to_have_count(15)
    target = made["waiting6"]
    link = page.locator(f"#now-{target.uuid} a.patient-link")
    link.focus()
    link.scroll_into_view_if_needed()
    page.mouse.wheel(0, 120)
    page.wait_for_timeout(200)
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    services.handoff_claim(handoff=made["waiting0"], by=new_ma(first_name="Jordan", last_name="Lee"))
    with page.expect_response(lambda r: "/clinic-now/" in r.url and r.request.headers.get("hx-request") == "true"):
        page.clock.run_for(16_000)
    page.wait_for_timeout(300)
    expect(page.locator(f"#now-{made['waiting0'].uuid}")).to_contain_text("Jordan Lee")
    expect(link).to_be_focused()
    assert page.evaluate("window.scrollY") == scrolled
    page.screenshot(path=str(screen.shot("clinic-now-ma").with_name("clinic-now-ma-viewport.png")))

    # The strep patient walks out: "Patient left", what goes to whom, confirmed.
    row = page.locator(f"#now-{made['strep'].uuid}")
    row.locator("summary", has_text="Patient left").click()
    expect(row.locator(".patient-left-panel")).to_contain_text("Rapid strep: call the patient with the result")
    # The refresh waits while the panel is open, so it isn't closed under the MA's hand.
    page.clock.run_for(16_000)
    page.wait_for_timeout(300)
    expect(row.locator(".patient-left-panel")).to_be_visible()
    screen.shot("clinic-now-patient-left-open")
    screen.assert_accessible()
    row.get_by_role("button", name="Record that").click()
    page.wait_for_url("**/clinic-now/")
    expect(page.locator(".alert-success")).to_contain_text("has left")
    expect(page.locator(f"#now-{made['strep'].uuid}")).to_have_count(0)
    expect(rows).to_have_count(14)
    call = RecollectionCall.objects.get(handoff=made["strep"])
    assert call.kind == "result" and call.clinician == made["strep"].ordering_clinician
    screen.shot("clinic-now-after-patient-left")
    screen.assert_accessible()
    screen.assert_no_console_errors()
