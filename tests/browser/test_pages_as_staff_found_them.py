"""Issue 14's polish (points 13-17) in a real browser, each page screenshotted and checked with axe.

Competency with procedure names and spelled dates; a patient's procedures in the order they were
ordered, consent flagged only while it is still to get; the lab technician's queue filtered to lab
work, with checkboxes and radios whose borders can be seen; the access log with the queue's refreshes
folded; Django admin in the clinic's name and sections.
"""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from backoffice import roles
from backoffice.models import AccessAction, AccessLog, AccessLogPatient, Credential, Patient, User
from procedures.models import Competency
from procedures.workflow import ProcedureStatus
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, UserFactory
from tests.procedures.helpers import (
    credentialed,
    documented,
    finished,
    new_ma,
    new_supervisor,
    procedure_type,
    ready_handoff,
    signed_off,
    start,
)

pytestmark = pytest.mark.browser

# WCAG 2.2 1.4.11: the border that shows an unchecked box or radio, against what is behind it.
CONTRASTS = """
() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const behind = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll("input.form-check-input:not(:checked)")]
    .filter((el) => el.offsetParent !== null)
    .map((el) => {
      const [a, b] = [lum(rgb(getComputedStyle(el).borderTopColor)), lum(behind(el))];
      return { id: el.id || el.name, type: el.type, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
    });
}
"""


def _borders_can_be_seen(page: Page) -> list[dict[str, object]]:
    measured = page.evaluate(CONTRASTS)
    assert measured, "no unchecked checkbox or radio on the page"
    assert [m for m in measured if m["ratio"] < 3] == []
    return measured


def test_competency_names_each_procedure_and_spells_every_date(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
) -> None:
    supervisor = new_supervisor(username="boss", first_name="Samira", last_name="Okafor")
    senior = signed_off(
        new_ma(first_name="Maria", last_name="Alvarez"), by=supervisor, expires_on=dt.date(2027, 12, 31)
    )
    phlebotomist = new_ma(first_name="Ana", last_name="Reyes")
    phlebotomist.credentials.update(kind=Credential.Kind.CPT, expires_on=timezone.localdate() + dt.timedelta(days=12))
    signed_off(phlebotomist, "36415", "94760", by=supervisor, expires_on=dt.date(2027, 6, 30))
    trainee = new_ma(first_name="Jordan", last_name="Lee")
    for code, times in (("36415", 3), ("96372", 1), ("69209", 2)):
        Competency.objects.create(user=trainee, procedure_type=procedure_type(code), supervised_count=times)
    lapsed = new_ma(first_name="Kwame", last_name="Mensah")
    signed_off(lapsed, "93000", by=supervisor, expires_on=timezone.localdate() - dt.timedelta(days=5))
    credentialed(UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, first_name="Linh", last_name="Nguyen"))
    assert senior.pk and lapsed.pk
    page = screen.page

    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        screen.login("boss")
        screen.goto("/procedures/competency/")
        head = page.locator("table.competency-matrix thead")
        expect(head).to_contain_text("Venipuncture")
        expect(head).to_contain_text("Fine needle aspiration, ultrasound-guided, first lesion")
        expect(head).not_to_contain_text("36415")
        reyes = page.locator("tr", has_text="Ana Reyes")
        expect(reyes).to_contain_text("Phlebotomy tech")
        expect(reyes).to_contain_text("Jun 2027")
        expect(reyes).to_contain_text("Expires within 30 days")
        expect(page.locator("tr", has_text="Maria Alvarez")).to_contain_text("Dec 2027")
        # The whole matrix on the screen's width: no column cut off or scrolled away.
        table = page.locator("table.competency-matrix").bounding_box()
        assert table is not None and table["x"] + table["width"] <= width, (width, table)
        screen.shot(f"ps01-competency-{width}x{height}")
        screen.assert_accessible()
        screen.logout()
    screen.assert_no_console_errors()


def test_a_patient_s_procedures_keep_their_order_and_consent_shows_only_while_it_is_to_get(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
) -> None:
    ma = signed_off(new_ma(username="maria", first_name="Maria", last_name="Alvarez"))
    patient = PatientFactory(given_name="Rosa", family_name="Martínez", mrn="M271801")
    handoff = HandoffFactory(patient=patient, exam_room=ExamRoomFactory(name="Exam 3"))
    _, orders = ready_handoff("36415", "96372", "12001", ma=ma, handoff=handoff)
    injection = finished(documented(start(orders["96372"], ma), ma), ma)
    assert injection.status == ProcedureStatus.COMPLETED
    start(orders["36415"], ma)
    page = screen.page

    screen.login("maria")
    screen.goto("/procedures/queue/")
    rows = page.locator("table.procedure-queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Venipuncture")  # started, still first: ordered first
    expect(rows.nth(1)).to_contain_text("Simple laceration repair")
    expect(page.get_by_text("each patient's procedures as ordered")).to_be_visible()
    screen.shot("ps02-my-procedures-as-ordered")
    screen.assert_accessible()

    screen.goto(f"/procedures/{injection.uuid}/")
    head = page.locator("section.procedure-head")
    expect(head).to_contain_text("Completed")
    expect(head).not_to_contain_text("Consent required")
    screen.shot("ps03-completed-injection-no-consent-flag")
    screen.assert_accessible()

    screen.goto(f"/procedures/{orders['12001'].uuid}/")
    head = page.locator("section.procedure-head")
    expect(head).to_contain_text("Consent required")
    expect(head).to_contain_text("Time-out required")
    screen.shot("ps04-laceration-to-do-flags")
    screen.assert_accessible()

    screen.goto(f"/handoffs/{handoff.uuid}/")
    panel = page.locator("section.procedure-panel tbody tr")
    expect(panel.nth(0)).to_contain_text("Venipuncture")
    expect(panel.nth(1)).to_contain_text("Therapeutic injection")
    expect(panel.nth(2)).to_contain_text("Simple laceration repair")
    screen.shot("ps05-handoff-procedures-as-ordered")
    screen.assert_accessible()
    screen.assert_no_console_errors()


def test_the_lab_tech_filters_the_queue_to_lab_work_and_every_box_and_radio_can_be_seen(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    lab_tech: User,
    medical_assistant: User,
) -> None:
    from lab.models import TestDefinition

    test = TestDefinition.objects.filter(is_active=True).first()
    assert test is not None
    with_tests = [
        HandoffFactory(patient=PatientFactory(given_name=given, family_name=family))
        for given, family in (("Rosa", "Martínez"), ("Kwame", "Mensah"))
    ]
    for handoff in with_tests:
        handoff.test_orders.create(test=test, created_by=handoff.ordering_clinician)
    HandoffFactory(patient=PatientFactory(given_name="Olga", family_name="Ivanova"))  # procedures only
    page = screen.page

    screen.login("lab")
    screen.goto("/queue/")
    expect(page.get_by_label("Only mine")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(3)
    measured = _borders_can_be_seen(page)
    assert {m["id"] for m in measured} == {"id_lab"}
    page.get_by_label("Lab work only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).not_to_contain_text("IVANOVA")
    expect(page.get_by_label("Lab work only")).to_be_checked()
    screen.shot("ps06-lab-tech-queue-lab-work")
    screen.assert_accessible()
    screen.logout()

    # The new handoff page: priority radios and the catalog's checkboxes, unchecked, on white.
    screen.login("ma")
    screen.goto("/handoffs/new/")
    measured = _borders_can_be_seen(page)
    assert {"radio", "checkbox"} <= {m["type"] for m in measured}
    screen.shot("ps07-new-handoff-checkbox-borders")
    screen.assert_accessible()
    screen.assert_no_console_errors()


def _listed(user: User, at: dt.datetime, patients: list[Patient], what: str = "queue") -> None:
    entry = AccessLog.objects.create(
        at=at, user=user, username=user.username, action=AccessAction.LIST, what=what, ip="10.20.4.17"
    )
    AccessLogPatient.objects.bulk_create([AccessLogPatient(log=entry, patient=p, at=at) for p in patients])


def test_the_access_log_folds_the_queue_s_refreshes_so_a_view_is_not_buried(
    screen: Screen,
    medical_assistant: User,
    other_ma: User,
    auditor: User,
) -> None:
    rosa = PatientFactory(mrn="M314159", given_name="Rosa", family_name="Martínez")
    crowd = [rosa, *PatientFactory.create_batch(4)]
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    for n in range(8 * 20):  # two MAs' queues open, a refresh every 45 s each for two hours
        _listed(medical_assistant if n % 2 else other_ma, start + dt.timedelta(seconds=45 * n), crowd)
    viewed = start + dt.timedelta(minutes=70)
    entry = AccessLog.objects.create(
        at=viewed, user=other_ma, username="ma2", action=AccessAction.VIEW, what="handoff detail", ip="10.20.4.17"
    )
    AccessLogPatient.objects.create(log=entry, patient=rosa, at=viewed)
    page = screen.page

    screen.login("audit")
    page.get_by_label("Staff username").fill("ma2")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.audit-table tbody tr").first).to_contain_text("queue")
    page.get_by_label("Fold queue and board refreshes").check()
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.audit-table tbody tr")
    expect(rows).to_have_count(3)  # two hours of refreshes, and the view between them
    expect(page.locator("tr", has_text="handoff detail")).to_be_visible()
    expect(rows.first).to_contain_text("refreshes")
    expect(page.get_by_label("Fold queue and board refreshes")).to_be_checked()
    screen.shot("ps08-access-log-folded")
    screen.assert_accessible()
    screen.assert_no_console_errors()


def test_django_admin_is_in_the_clinic_s_name_and_sections(screen: Screen, admin_user: User) -> None:
    User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple")
    page = screen.page

    screen.login("admin")
    screen.goto("/admin/")
    expect(page.locator("#site-name")).to_have_text("Clinic back office · admin")
    captions = page.locator("#content-main caption")
    expect(captions).to_have_text(["Catalogs", "Staff", "Stations", "Audit"])
    expect(page).to_have_title("Catalogs, staff and stations | Clinic back office admin")
    screen.shot("ps09-admin-index-admin-role")
    screen.assert_accessible()
    screen.goto("/admin/procedures/proceduretype/")
    expect(page.locator("#nav-sidebar caption").first).to_have_text("Catalogs")
    screen.shot("ps10-admin-procedure-types-sidebar")
    screen.assert_accessible()
    page.get_by_role("button", name="Log out").click()

    screen.login("root")
    screen.goto("/admin/")
    expect(captions).to_have_text(["Catalogs", "Staff", "Stations", "Patients' records", "Audit", "Internals"])
    expect(page.locator("#content-main")).to_contain_text("Handoff histories")
    screen.shot("ps11-admin-index-superuser")
    screen.assert_accessible()
    screen.assert_no_console_errors()
