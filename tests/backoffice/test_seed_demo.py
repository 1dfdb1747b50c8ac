"""The demo seed: idempotent, consistent with the workflow and the database constraints.

The scale seed's tests are in test_seed_scale.py: this module's demo stays seeded while it runs.
"""

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Q
from django.test import Client, override_settings
from django.utils import timezone
from pytest_django import Settings

from backoffice import roles
from backoffice.devtools.seed.catalogs import DEMO_PASSWORD, DEMO_USERS, PATIENT_STATION_KINDS
from backoffice.devtools.seed.clinic_now import NOW_VISIT_KEYS
from backoffice.devtools.seed.lab_history import history_keys
from backoffice.devtools.seed.specimens import DEMO_VISIT_KEYS
from backoffice.models import (
    Credential,
    ExamRoom,
    Handoff,
    HandoffEvent,
    Patient,
    Station,
    StationEvent,
    User,
)
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, StationState
from lab.models import RecollectionCall, Result, TestOrder, TestOrderEvent
from lab.selectors import draws_for_handoff
from procedures.models import ProcedureOrder
from specimens.models import LabelPrint, LabelPrinter, Specimen, SpecimenEvent
from specimens.workflow import Location, SpecimenStatus

pytestmark = pytest.mark.django_db

S = SpecimenStatus
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fast_hashing(settings: Settings) -> None:
    # The seed hashes seven passwords per run; the real hasher would make these tests slow.
    settings.PASSWORD_HASHERS = FAST_HASHERS


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def demo_output(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """``seed_demo`` run once for the whole module, and what it printed.

    The demo is seeded in a transaction held open for the module; each test runs in a savepoint
    inside it (pytest-django's atomic nests), so what a test changes (a second run, a password) is
    rolled back after it, and the module's end rolls the demo back: the next module sees none of it.
    """
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS), transaction.atomic():
        yield seed()
        transaction.set_rollback(True)


def row_counts() -> dict[str, int]:
    models = (User, Credential, ExamRoom, Station, Patient, Handoff, HandoffEvent, StationEvent)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["ProcedureOrder"] = ProcedureOrder.objects.count()
    counts["TestOrder"] = TestOrder.objects.count()
    for model in (TestOrderEvent, Specimen, SpecimenEvent, LabelPrinter, LabelPrint):
        counts[model.__name__] = model.objects.count()
    return counts


def test_running_twice_changes_nothing(demo_output: str) -> None:
    first = row_counts()
    states = dict(Station.objects.values_list("code", "state"))

    output = seed()

    assert row_counts() == first
    assert dict(Station.objects.values_list("code", "state")) == states
    assert "demo handoffs already there" in output
    assert "demo specimens already there" in output
    assert "Label printers: 0 added" in output
    assert first["Patient"] == 200
    assert first["ExamRoom"] == 8


def test_every_role_has_a_demo_user_who_can_log_in(demo_output: str) -> None:
    output = demo_output

    for role in roles.ROLES:
        users = User.objects.filter(groups__name=role, is_active=True)
        assert users.exists(), role
        for user in users:
            assert Client().login(username=user.username, password=DEMO_PASSWORD), user.username
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    # The login table is printed on every run, not only the first.
    output += seed()
    for spec in DEMO_USERS:
        assert output.count(spec.username) >= 2
    assert output.count(DEMO_PASSWORD) == 2 * len(DEMO_USERS)


def test_demo_users_who_owe_a_second_factor_get_the_printed_demo_key(demo_output: str, settings: Settings) -> None:
    """With production's policy the supervisor, the auditor and the admin need a code: a newcomer gets
    it from the key printed with the logins (or ``manage.py demo_code``), with no phone of their own."""
    from django.urls import reverse
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice.devtools.demo_totp import DEMO_TOTP_SECRET, demo_totp_code, demo_totp_key

    settings.OTP_REQUIRED_ROLES = [roles.ROLE_ADMIN, roles.ROLE_SUPERVISOR, roles.ROLE_AUDITOR]
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    output = seed()
    devices = TOTPDevice.objects.filter(confirmed=True)
    assert sorted(devices.values_list("user__username", flat=True)) == ["admin", "auditor", "supervisor"]
    assert " ".join(DEMO_TOTP_SECRET[i : i + 4] for i in range(0, 32, 4)) in output
    assert "manage.py demo_code" in output

    client = Client()
    response = client.post(reverse("login"), {"username": "supervisor", "password": DEMO_PASSWORD})
    assert client.get(response["Location"])["Location"].startswith(reverse("otp_verify"))
    assert client.post(reverse("otp_verify"), {"code": demo_totp_code()}).status_code == 302
    assert client.get(reverse("board")).status_code == 200

    # manage.py demo_code prints the same code; a run again keeps the device (the code just used stays used).
    out = StringIO()
    call_command("demo_code", stdout=out)
    step = int(timezone.now().timestamp()) // 30
    assert out.getvalue().split()[0] in {demo_totp_code(step), demo_totp_code(step - 1)}  # at a step's edge
    before = set(devices.values_list("pk", flat=True))
    seed()
    assert set(devices.values_list("pk", flat=True)) == before
    # A replaced key is put back, like a changed password.
    TOTPDevice.objects.filter(user__username="auditor").update(key="00" * 20)
    seed()
    assert TOTPDevice.objects.get(user__username="auditor").bin_key == demo_totp_key()


def test_a_changed_demo_password_is_put_back(demo_output: str) -> None:
    user = User.objects.get(username="ma")
    user.set_password("something-else-entirely-42")
    user.save()

    seed()

    assert Client().login(username="ma", password=DEMO_PASSWORD)


def test_staff_credentials_include_one_expiring_soon(demo_output: str) -> None:

    today = timezone.localdate()
    kinds = set(Credential.objects.values_list("user__username", "kind"))
    assert {("ma", "CMA"), ("ma2", "RMA"), ("supervisor", "RN"), ("labtech", "MLT")} <= kinds
    assert {("clinician", "MD"), ("clinician2", "NP")} <= kinds
    soon = Credential.objects.filter(expires_on__gte=today, expires_on__lte=today + timedelta(days=30))
    assert soon.filter(user__groups__name=roles.ROLE_MEDICAL_ASSISTANT).exists()


def test_patients_are_varied_and_consistent(demo_output: str) -> None:

    patients = Patient.objects.filter(mrn__regex=r"^M[0-9]{6}$")
    assert patients.count() == 200
    with_allergies = patients.exclude(allergies="").count()
    assert 40 <= with_allergies <= 80  # about 30%
    assert not patients.exclude(allergies="").filter(no_known_allergies=True).exists()
    assert patients.filter(allergies="", no_known_allergies=True).count() > 100
    languages = Counter(patients.values_list("preferred_language", flat=True))
    assert languages.most_common(1)[0][0] == "English"
    assert len(languages) >= 5
    assert not patients.filter(interpreter_needed=True, preferred_language="English").exists()
    assert not patients.filter(interpreter_needed=False).exclude(preferred_language="English").exists()
    assert patients.values("family_name").distinct().count() > 100


def today_only() -> Any:
    """The demo's handoffs less the past four weeks' lab visits (test_the_past_weeks_lab_visits_...)."""
    return Handoff.objects.exclude(uuid__in=history_keys())


def test_handoffs_exist_in_every_status_with_real_events(demo_output: str) -> None:

    by_status = dict(today_only().values_list("status").annotate(n=Count("pk")).order_by())
    assert by_status == {
        HandoffStatus.WAITING: 12,
        HandoffStatus.CLAIMED: 3,
        HandoffStatus.IDENTITY_VERIFIED: 2,
        # The clinic day's, the specimen visits' (9 completed, 1 still collecting) and the send-out
        # desk's 14 visits (all completed: their tubes are at the desk or beyond; 6 of them resulted).
        HandoffStatus.IN_PROGRESS: 2 + 1,
        # Handed back to the demo clinician (the patient refused the draw).
        HandoffStatus.RETURNED: 1,
        # Also the trainee's two ECGs, done for the patient: one awaits its co-sign, one is returned.
        # And the clinic-now board's two: one waiting for a urine hCG, one who left before a COVID-19 antigen.
        HandoffStatus.COMPLETED: 20 + 2 + 9 + 14 + 2,
        HandoffStatus.CANCELLED: 3,
    }
    returned = Handoff.objects.get(status=HandoffStatus.RETURNED)
    assert (returned.hand_back_reason, returned.claimed_by, returned.station) == ("patient_refused", None, None)
    for_review = ProcedureOrder.objects.filter(status__in=("awaiting_cosign", "returned"))
    assert sorted(for_review.values_list("status", "handoff__status")) == [
        ("awaiting_cosign", HandoffStatus.COMPLETED),
        ("returned", HandoffStatus.COMPLETED),
    ]
    assert all(o.performer and o.performer.username == "ma2" for o in for_review)
    waiting = Handoff.objects.filter(status=HandoffStatus.WAITING)
    assert waiting.filter(priority=1).exists() and waiting.filter(priority=2).exists()
    assert waiting.filter(interpreter_needed=True).exists()
    assert waiting.filter(mobility=Handoff.Mobility.WHEELCHAIR).exists()
    assert waiting.exclude(isolation=Handoff.Isolation.NONE).exists()
    assert waiting.exclude(companion="").exists()
    assert waiting.filter(aide_needed=True).exists()
    now = timezone.now()
    for handoff in waiting:
        assert timedelta(minutes=2) <= now - handoff.created_at <= timedelta(minutes=41)
    # Open work has its ordered items; every handoff's story starts with "created" at its created_at.
    for handoff in Handoff.objects.open():
        assert handoff.procedure_orders.exists() or handoff.test_orders.exists()
    for handoff in Handoff.objects.all():
        events = list(handoff.events.all())
        assert events[0].action == HandoffEvent.Action.CREATED
        assert events[0].at == handoff.created_at
        assert events[-1].to_status == handoff.status
        assert [e.at for e in events] == sorted(e.at for e in events)
    completed = Handoff.objects.filter(status=HandoffStatus.COMPLETED)
    assert all(h.events.filter(action=HandoffEvent.Action.COMPLETED).exists() for h in completed)
    assert not Handoff.objects.filter(status=HandoffStatus.CANCELLED, cancel_reason="").exists()


def test_occupied_stations_are_the_ones_open_handoffs_sit_in(demo_output: str) -> None:

    occupied = set(Station.objects.filter(state=StationState.OCCUPIED).values_list("pk", flat=True))
    in_use = set(
        Handoff.objects.filter(status__in=OPEN_STATUSES, station__isnull=False).values_list("station", flat=True)
    )
    assert occupied == in_use
    assert len(occupied) == 4 + 1  # the clinic day's, and the specimen visit still collecting
    assert Station.objects.filter(state=StationState.NEEDS_TURNOVER).count() == 1
    assert Station.objects.filter(state=StationState.READY).exists()
    # The stations' recorded history ends in their current state.
    for station in Station.objects.all():
        last = station.events.order_by("-at", "-pk").first()
        assert last is None or last.to_status == station.state


def test_specimens_exist_in_every_state_with_real_events(demo_output: str) -> None:
    output = demo_output

    by_status = Counter(Specimen.objects.filter(handoff__in=today_only()).values_list("status", flat=True))
    assert by_status == {
        S.LABELLED: 1,
        S.COLLECTED: 1,
        S.IN_TRANSIT: 2,
        # And the send-out desk's: 3 waiting there, 2 packed in the open shipment (with the clinic-now TSH).
        S.RECEIVED: 1 + 5 + 1,
        S.IN_TESTING: 1 + 2,  # and the clinic-now board's urine hCG and COVID-19 antigen, still running
        S.DONE: 3,  # tested at the bench: results released
        S.STORED: 1,
        S.DISPOSED: 1,
        S.REJECTED: 2,
        S.NOT_COLLECTED: 2,
        # The send-out desk's: acknowledged, retrying and overdue, and the 6 whose results came back.
        S.SHIPPED: 3 + 6,
    }
    # As the specimens' own seed leaves them, before the bench's results move them on.
    assert (
        "Specimens: 1 labelled, 1 collected, 2 in transit, 3 received, 3 in testing, 1 disposed, 2 rejected, "
        "2 not collected"
    ) in output
    assert "Specimens after testing: 1 stored, 0 disposed of." in output
    receipts = SpecimenEvent.objects.filter(action=SpecimenEvent.Action.RECEIVED)
    assert set(receipts.values_list("to_location", flat=True)) == {Location.IN_HOUSE_BENCH, Location.SEND_OUT_DESK}
    received = Specimen.objects.filter(received_at__isnull=False)
    assert set(received.values_list("received_by__username", flat=True)) == {"labtech"}
    # In-house tests went to the bench, send-outs only to the send-out desk.
    for specimen in Specimen.objects.filter(location__in=[Location.IN_HOUSE_BENCH, Location.SEND_OUT_DESK]):
        performed = {o.test.performed for o in specimen.test_orders.select_related("test")}
        expected = Location.IN_HOUSE_BENCH if "in_house" in performed else Location.SEND_OUT_DESK
        assert not performed or specimen.location == expected, specimen
    now = timezone.now()
    for specimen in Specimen.objects.select_related("handoff"):
        events = list(specimen.events.all())
        assert events[0].action == SpecimenEvent.Action.LABELLED
        assert events[-1].to_status == specimen.status
        # The demo clock moved every step back in time, in order, all after the visit began.
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert specimen.handoff.created_at < events[0].at == specimen.labelled_at < now
        assert specimen.status_changed_at == max(e.at for e in events if e.from_status != e.to_status)
        [first_print] = specimen.label_prints.all()
        assert first_print.printer is not None and first_print.printer.station_id == specimen.handoff.station_id
        assert first_print.output == LabelPrinter.Transport.PDF
        if specimen.is_collected or specimen.status == S.REJECTED:
            assert specimen.verified_at is not None and specimen.verify_method == "scanned"
    assert Specimen.objects.filter(status=S.NOT_COLLECTED, failed_draw_reason="no_vein").count() == 1


def test_a_rejected_cup_waits_for_recollection_with_a_labelled_tube_on_an_open_handoff(demo_output: str) -> None:

    cup = Specimen.objects.get(status=S.REJECTED, rejection_reason__code="RN")
    assert cup.rejection_note and cup.container.code == "sterile-cup"
    handoff = cup.handoff
    assert handoff.is_open and handoff.status == HandoffStatus.IN_PROGRESS
    assert handoff.station is not None and handoff.station.state == StationState.OCCUPIED
    dipstick = TestOrder.objects.get(handoff=handoff, test__short_name="Urine dipstick")
    assert (dipstick.status, dipstick.needs_recollection, dipstick.specimen) == (TestOrder.Status.ORDERED, True, None)
    [draw] = draws_for_handoff(handoff)
    assert (draw.container.code, draw.needs_recollection) == ("sterile-cup", True)
    # The tube for the blood tests is labelled and waits for the bedside check.
    tube = Specimen.objects.get(status=S.LABELLED)
    assert tube.handoff == handoff and tube.verified_at is None
    # Hemolysed serum was rejected on receipt, drawn again and received, and that visit is closed.
    serum = Specimen.objects.get(rejection_reason__code="RH")
    assert serum.received_acceptable is False and serum.status == S.DISPOSED  # kept on record
    assert [e.action for e in serum.events.all()][-3:] == ["received", "rejected", "disposed"]
    [again] = serum.recollections.all()
    assert again.status == S.RECEIVED and again.location == Location.SEND_OUT_DESK
    assert serum.handoff.status == HandoffStatus.COMPLETED
    # A failed draw was drawn again by the supervisor.
    failed = Specimen.objects.get(status=S.NOT_COLLECTED, failed_draw_reason="no_vein")
    assert failed.handoff.specimens.filter(collected_by__username="supervisor").exists()


def test_specimen_visits_leave_no_test_waiting_on_a_closed_handoff(demo_output: str) -> None:

    visits = Handoff.objects.filter(uuid__in=DEMO_VISIT_KEYS)
    assert visits.count() == len(DEMO_VISIT_KEYS)
    assert visits.filter(status=HandoffStatus.COMPLETED).count() == len(DEMO_VISIT_KEYS) - 1
    closed = [HandoffStatus.COMPLETED, HandoffStatus.CANCELLED]
    # Only the urine the lab rejected after the patient left waits, and its clinician has a call-back.
    waiting = TestOrder.objects.filter(handoff__status__in=closed, status=TestOrder.Status.ORDERED)
    assert sorted(waiting.values_list("test__short_name", flat=True)) == ["Urine culture", "Urine dipstick"]
    assert all(o.needs_recollection for o in waiting)
    [call] = RecollectionCall.objects.filter(kind=RecollectionCall.Kind.RECOLLECT)
    assert call.handoff_id == waiting[0].handoff_id and call.status == RecollectionCall.Status.OPEN
    assert call.clinician == call.handoff.ordering_clinician and "LOC-LEAK" in call.reason
    # Every demo patient is on one of today's handoffs at most: the visits took patients nobody else had.
    today = Count("handoffs", filter=~Q(handoffs__uuid__in=history_keys()))
    assert not Patient.objects.annotate(n=today).filter(n__gt=1).exists()
    for order in TestOrder.objects.filter(handoff__in=visits):
        events = list(order.events.all())
        assert events[0].action == TestOrderEvent.Action.ORDERED and events[0].at == order.created_at
        assert events[-1].to_status == order.status
        assert [e.at for e in events] == sorted(e.at for e in events)


def test_label_printers_per_patient_station_and_a_zebra_to_configure(demo_output: str) -> None:

    for station in Station.objects.filter(kind__in=PATIENT_STATION_KINDS):
        [printer] = station.label_printers.all()
        assert printer.transport == LabelPrinter.Transport.PDF and printer.is_active
        assert (printer.width_in, printer.height_in, printer.dpi) == (2, 1, 203)
    [zebra] = LabelPrinter.objects.filter(transport=LabelPrinter.Transport.ZPL_TCP)
    assert zebra.station.kind == Station.Kind.LAB_BENCH
    assert (zebra.host, zebra.port, zebra.dpi, zebra.is_active) == ("zebra-bench.clinic.local", 9100, 300, False)
    assert "example" in zebra.name.lower()
    # A printer someone configured is kept as it is.
    LabelPrinter.objects.filter(pk=zebra.pk).update(host="10.0.4.21", is_active=True)
    seed()
    zebra.refresh_from_db()
    assert (zebra.host, zebra.is_active) == ("10.0.4.21", True)
    assert LabelPrinter.objects.count() == 8  # seven patient stations and the bench's Zebra


def test_the_bench_has_specimens_past_receipt_and_a_clinician_a_cancelled_test_to_see(demo_output: str) -> None:
    output = demo_output

    assert (
        "Results: 4 released (1 amended), 1 critical released with its call, 1 waiting for a second person." in output
    )
    assert "Critical calls: the ladder, 1 open (1 overdue), 0 read back." in output
    # The bench's own (a reference lab's critical and correction are tests/lab/sendouts/test_seed.py's).
    in_house = Result.objects.filter(reference_lab__isnull=True).exclude(order__handoff__uuid__in=history_keys())
    critical = in_house.get(is_critical=True)
    assert (critical.flag, critical.status, critical.critical_call.status) == ("LL", "released", "open")
    assert in_house.filter(status="superseded", amended_by__isnull=False).count() == 1

    stored = Specimen.objects.get(status=S.STORED)
    assert (stored.location, stored.storage_place) == (Location.STORAGE, "Fridge 1, rack A")
    # The strep test waits at the bench for a second person to verify its result.
    assert TestOrder.objects.filter(
        specimen__status=S.IN_TESTING, status=TestOrder.Status.IN_PROGRESS, results__status="entered"
    ).exists()
    [cancelled] = TestOrder.objects.filter(status=TestOrder.Status.CANCELLED, handoff__uuid__in=DEMO_VISIT_KEYS)
    assert (cancelled.test.short_name, cancelled.cancel_reason, cancelled.acknowledged_at) == ("PSA", "refused", None)
    assert cancelled.handoff.specimens.get().failed_draw_reason == "refused"


def test_the_clinic_now_board_has_a_patient_waiting_for_a_result_and_one_who_left_before_theirs(
    demo_output: str,
) -> None:
    from backoffice.models import User
    from backoffice.pages.clinic_now import clinic_now_handoffs, clinic_rows

    waiting, left = (Handoff.objects.get(uuid=key) for key in NOW_VISIT_KEYS)
    supervisor = User.objects.get(username="supervisor")
    rows = {r.handoff.pk: r for r in clinic_rows(clinic_now_handoffs(user=supervisor), user=supervisor)[0]}
    row = rows[waiting.pk]
    assert [(i.name, i.state) for i in row.poc] == [("Urine hCG", "running")]
    assert [(i.name, i.state) for i in row.send_outs] == [("TSH", "packaged")]
    assert row.results_back is False and row.left
    # The one who left: off the board, completed, and a call with the result on the clinician's list.
    assert left.pk not in rows
    assert left.status == HandoffStatus.COMPLETED and left.patient_left_at is not None
    call = RecollectionCall.objects.get(handoff=left)
    assert (call.kind, call.tests_label, call.clinician) == ("result", "COVID-19 Ag", left.ordering_clinician)
    assert left.events.filter(action=HandoffEvent.Action.PATIENT_LEFT).exists()
    # STAT and routine, open and done in the back office: a realistic mix on the first screen.
    assert any(r.handoff.is_stat for r in rows.values()) and len(rows) >= 15


def test_the_past_weeks_lab_visits_give_the_turnaround_dashboard_a_month(demo_output: str) -> None:
    from lab.models import CriticalCall
    from lab.turnaround.selectors import BY_KEY, dashboard

    visits = Handoff.objects.filter(uuid__in=history_keys())
    assert "Lab history: 88 visits over the past 4 weeks" in demo_output
    assert visits.count() == 88 and not visits.exclude(status=HandoffStatus.COMPLETED).exists()
    today = timezone.localdate()
    days = {timezone.localtime(h.created_at).date() for h in visits}
    assert min(days) >= today - timedelta(days=28) and max(days) < today
    assert all(d.weekday() != 6 for d in days)  # closed on Sundays
    assert visits.filter(priority=1).exists()  # some STAT
    # Each went the whole way, every time in the order the work happened.
    for order in TestOrder.objects.filter(handoff__in=visits).select_related("specimen"):
        tube = order.specimen
        assert tube is not None and tube.status == S.DISPOSED
        assert order.status == TestOrder.Status.RESULTED
        assert order.created_at < tube.collected_at < tube.received_at < order.resulted_at <= order.released_at
        signed = max(order.results.values_list("acknowledged_at", flat=True))  # by the ordering clinician
        assert order.released_at < signed < tube.disposed_at < timezone.now()
        events = [e.at for e in order.events.all()]
        assert events == sorted(events) and events[0] == order.created_at
    assert not Result.objects.filter(order__handoff__in=visits, acknowledged_at__isnull=True).exists()
    # Its critical values were called and read back, within minutes, the due time from the demo opening.
    calls = CriticalCall.objects.filter(result__order__handoff__in=visits)
    assert calls.exists() and not calls.exclude(closed_how="read back").exists()
    for call in calls:
        assert call.opened_at < call.closed_at < call.opened_at + timedelta(minutes=30) < call.due_at + timedelta(1)
        assert call.attempts.filter(outcome="read_back").get().at == call.closed_at
    # The walk-in chair they used is ready for the next.
    assert Station.objects.get(code="walk-in-1").state == StationState.READY
    supervisor = User.objects.get(username="supervisor")
    month = dashboard(user=supervisor, since=today - timedelta(days=29), until=today, bucket="day")
    overview = dict(month.overview)
    assert overview[BY_KEY["order_release"]].count >= 100
    assert overview[BY_KEY["critical_read_back"]].count >= calls.count()
    assert sum(1 for row in month.by_bucket if row.stats.count) >= 20  # a trend over the weeks, not a day
