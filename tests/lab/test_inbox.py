"""Results in front of the clinician: the inbox, signing exactly what was shown, the patient's results over time."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.models import AccessLog, User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.inbox import selectors
from lab.inbox.services import results_acknowledge
from lab.inbox.trend import trend_chart
from lab.models import Result, ResultEvent
from lab.workflow import ResultStatus
from tests.factories import UserFactory
from tests.lab.inbox_helpers import adult, collected_for, corrected, order_for, released

pytestmark = pytest.mark.django_db


def shown(*results: Result) -> list[tuple]:  # type: ignore[type-arg]
    return [(r.uuid, r.version) for r in results]


def fresh(result: Result) -> Result:
    return Result.objects.select_related("acknowledged_by").get(pk=result.pk)


def hemoglobin(clinician: User, typed: str, *, ago_minutes: int = 0, patient=None) -> Result:  # type: ignore[no-untyped-def]
    return released(
        order_for(collected_for(clinician, "Hemoglobin", patient=patient), "Hemoglobin"), typed, ago_minutes=ago_minutes
    )


def inbox_pairs(content: str) -> list[str]:
    return re.findall(r'name="shown" value="([^"]+)"', content)


# --- Acknowledging -----------------------------------------------------------------------------------


def test_it_signs_exactly_the_results_shown_and_not_one_released_after(clinician: User) -> None:
    low = hemoglobin(clinician, "10.9")
    normal = hemoglobin(clinician, "12.4")
    page = shown(low, normal)  # what the inbox listed
    late = hemoglobin(clinician, "6.8")  # released while the page was open
    before = timezone.now()
    signed = results_acknowledge(shown=page, by=clinician)
    assert {r.pk for r in signed} == {low.pk, normal.pk}
    for result in (low, normal):
        result = fresh(result)
        assert result.acknowledged_by == clinician
        assert result.acknowledged_at is not None and result.acknowledged_at >= before
        assert result.version == 4
        assert list(result.events.values_list("action", "actor", "note")) == [
            (ResultEvent.Action.ACKNOWLEDGED, clinician.pk, "")
        ]
    assert fresh(late).acknowledged_at is None
    assert [r.pk for r in selectors.inbox_results(user=clinician, clinician=clinician)] == [late.pk]


def test_a_result_that_changed_since_it_was_shown_signs_nothing(clinician: User) -> None:
    first = hemoglobin(clinician, "10.9")
    second = hemoglobin(clinician, "12.4")
    with pytest.raises(TransitionNotAllowed, match="changed after the page was shown"):
        results_acknowledge(shown=[(first.uuid, first.version - 1), (second.uuid, second.version)], by=clinician)
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()
    assert not ResultEvent.objects.filter(action=ResultEvent.Action.ACKNOWLEDGED).exists()


def test_a_result_corrected_while_the_page_was_open_is_not_signed(clinician: User) -> None:
    original = hemoglobin(clinician, "6.8")
    other = hemoglobin(clinician, "12.4")
    page = shown(original, other)
    correction = corrected(original, "12.8")
    with pytest.raises(TransitionNotAllowed, match="has been corrected since"):
        results_acknowledge(shown=page, by=clinician)
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()
    # The correction comes to the inbox unsigned, marked and showing the value it replaced.
    inbox = selectors.inbox_results(user=clinician, clinician=clinician)
    assert [r.pk for r in inbox] == [other.pk, correction.pk]
    assert inbox[1].amends is not None and inbox[1].amends.display_value == "6.8 g/dL"


def test_another_clinicians_result_is_refused_and_nothing_is_signed(clinician: User) -> None:
    mine = hemoglobin(clinician, "12.4")
    colleague = UserFactory(role=roles.ROLE_CLINICIAN)
    theirs = hemoglobin(colleague, "10.9")
    with pytest.raises(PermissionRefused, match="only they or a supervisor acknowledge it"):
        results_acknowledge(shown=shown(mine, theirs), by=clinician)
    assert fresh(mine).acknowledged_at is None and fresh(theirs).acknowledged_at is None


def test_a_supervisor_signs_for_a_clinician_who_is_away(clinician: User, supervisor: User) -> None:
    result = hemoglobin(clinician, "10.9")
    results_acknowledge(shown=shown(result), by=supervisor)
    result = fresh(result)
    assert result.acknowledged_by == supervisor
    assert result.events.get().note == f"For {clinician}, ordering clinician"


def test_roles_without_the_permission_and_repeats_are_refused(clinician: User, medical_assistant: User) -> None:
    result = hemoglobin(clinician, "10.9")
    with pytest.raises(PermissionRefused, match="acknowledge results"):
        results_acknowledge(shown=shown(result), by=medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="no results to acknowledge"):
        results_acknowledge(shown=[], by=clinician)
    [signed] = results_acknowledge(shown=shown(result), by=clinician)
    with pytest.raises(TransitionNotAllowed, match="was acknowledged by"):
        results_acknowledge(shown=shown(signed), by=clinician)


# --- The inbox and the board --------------------------------------------------------------------------


def test_the_inbox_lists_critical_then_abnormal_then_oldest(clinician: User) -> None:
    normal_old = hemoglobin(clinician, "12.4", ago_minutes=90)
    low = hemoglobin(clinician, "10.9", ago_minutes=30)
    normal_new = hemoglobin(clinician, "13.0", ago_minutes=10)
    critical = hemoglobin(clinician, "6.8", ago_minutes=5)
    low_older = hemoglobin(clinician, "10.1", ago_minutes=60)
    hemoglobin(UserFactory(role=roles.ROLE_CLINICIAN), "5.0")  # another clinician's: never listed
    inbox = selectors.inbox_results(user=clinician, clinician=clinician)
    assert [r.pk for r in inbox] == [critical.pk, low_older.pk, low.pk, normal_old.pk, normal_new.pk]
    assert (inbox[0].flag, inbox[0].is_critical, inbox[0].reference_text) == ("LL", True, "11.6\u201315.0 g/dL")


def test_a_long_inbox_shows_the_most_urgent_first_and_counts_the_rest(
    client: Client,
    clinician: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selectors, "INBOX_SHOWN", 2)
    normal = [hemoglobin(clinician, "12.4", ago_minutes=30 + i) for i in range(2)]
    critical = hemoglobin(clinician, "6.8")
    shown_now = selectors.inbox_results(user=clinician, clinician=clinician)
    assert [r.pk for r in shown_now] == [critical.pk, normal[1].pk]
    assert selectors.inbox_total(shown_now) == 3
    client.force_login(clinician)
    content = client.get(reverse("lab:inbox:inbox")).content.decode()
    assert "The 2 most urgent of 3 are shown" in content
    assert "Acknowledge these 2 results" in content


def test_a_clinician_may_not_read_another_clinicians_inbox(clinician: User) -> None:
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.inbox_results(user=clinician, clinician=UserFactory(role=roles.ROLE_CLINICIAN))


def test_unsigned_results_go_stale_on_the_supervisor_board_after_the_set_time(
    client: Client,
    clinician: User,
    supervisor: User,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.LAB_INBOX_STALE_MINUTES = 120
    stale = hemoglobin(clinician, "10.9", ago_minutes=180)
    hemoglobin(clinician, "12.4", ago_minutes=60)  # not yet stale
    signed = hemoglobin(clinician, "12.0", ago_minutes=300)
    results_acknowledge(shown=shown(signed), by=clinician)
    found = selectors.stale_results(user=supervisor)
    assert ([r.pk for r in found.results], found.total, found.minutes) == ([stale.pk], 1, 120)

    client.force_login(supervisor)
    content = client.get(reverse("board")).content.decode()
    assert "Results not acknowledged after 120 minutes" in content
    assert stale.patient.family_name.upper() in content
    assert f"?clinician={clinician.pk}" in content
    entry = AccessLog.objects.get(what="board: unsigned results")
    assert list(entry.patients.values_list("pk", flat=True)) == [stale.patient_id]


def test_the_stale_list_is_the_supervisors(clinician: User) -> None:
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.stale_results(user=clinician)


# --- The patient's results ------------------------------------------------------------------------------


def test_the_patients_results_go_by_test_over_time_with_corrections_marked(clinician: User) -> None:
    patient = adult()
    first = hemoglobin(clinician, "12.4", ago_minutes=60 * 24 * 30, patient=patient)
    wrong = hemoglobin(clinician, "6.8", ago_minutes=60, patient=patient)
    fixed = corrected(wrong, "11.0")
    strep = released(order_for(collected_for(clinician, "Rapid strep", patient=patient), "Rapid strep"), "Positive")
    released(order_for(collected_for(clinician, "Hemoglobin"), "Hemoglobin"), "9.0")  # another patient's
    histories = selectors.patient_results(patient=patient)
    by_name = {h.analyte.short_name: h for h in histories}
    assert set(by_name) == {"Hgb", "Strep A"}
    hgb = by_name["Hgb"]
    assert [(r.pk, r.status) for r in hgb.results] == [
        (first.pk, ResultStatus.RELEASED),
        (wrong.pk, ResultStatus.SUPERSEDED),
        (fixed.pk, ResultStatus.RELEASED),
    ]
    assert hgb.results[2].amends.display_value == "6.8 g/dL"
    assert hgb.latest.pk == fixed.pk
    # The trend plots the current values only; the superseded 6.8 was never the patient's.
    assert hgb.chart is not None
    assert [p.label.split(" on ")[0] for p in hgb.chart.points] == ["12.4 g/dL", "11.0 g/dL (low)"]
    assert "Reference range 11.6\u201315.0 g/dL" in hgb.chart.summary
    assert by_name["Strep A"].chart is None  # coded: no chart
    assert [r.pk for r in by_name["Strep A"].results] == [strep.pk]


def test_the_trend_chart_runs_with_time_and_shades_the_range() -> None:
    start = timezone.now()
    values = [
        (start, Decimal("12.0"), "12.0 g/dL", "N"),
        (start + dt.timedelta(days=3), Decimal("6.8"), "6.8 g/dL", "LL"),
        (start + dt.timedelta(days=4), Decimal("10.0"), "10.0 g/dL", "L"),
    ]
    chart = trend_chart(
        values, name="Hemoglobin", low=Decimal("11.6"), high=Decimal("15.0"), range_label="11.6\u201315.0"
    )
    assert chart is not None
    xs = [p.x for p in chart.points]
    assert xs[0] < xs[1] < xs[2] and (xs[1] - xs[0]) == pytest.approx(3 * (xs[2] - xs[1]))
    assert chart.points[1].y > chart.points[2].y > chart.points[0].y  # lower values lower on the chart
    assert chart.band is not None and chart.band[1] > 0
    assert chart.summary.startswith("Hemoglobin, 3 results oldest first: 12.0 g/dL on ")
    assert "6.8 g/dL (critically low) on " in chart.summary
    assert trend_chart(values[:1], name="Hemoglobin", low=None, high=None, range_label="") is None


# --- Pages -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 6])
def test_the_inbox_page_lists_and_logs_its_results_in_constant_queries(
    client: Client,
    clinician: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    rows: int,
) -> None:
    results = [hemoglobin(clinician, "10.9" if i % 2 else "12.4") for i in range(rows)]
    client.force_login(clinician)
    # 1 session, 2 user, 3 permissions and roles, 4 the unsigned results (the first page, with how
    # many wait in all) with analyte, test, handoff's clinician, patient and a correction's original,
    # 5 the access row with its patients.
    with django_assert_num_queries(5):
        response = client.get(reverse("lab:inbox:inbox"))
    content = response.content.decode()
    assert sorted(inbox_pairs(content)) == sorted(f"{r.uuid}:{r.version}" for r in results)
    assert ("Acknowledge this result" if rows == 1 else f"Acknowledge these {rows} results") in content
    entry = AccessLog.objects.get(what="results inbox")
    assert sorted(entry.patients.values_list("pk", flat=True)) == sorted(r.patient_id for r in results)


def test_acknowledging_from_the_page_signs_what_it_showed_only(client: Client, clinician: User) -> None:
    first = hemoglobin(clinician, "6.8")
    client.force_login(clinician)
    page = client.get(reverse("lab:inbox:inbox")).content.decode()
    late = hemoglobin(clinician, "10.9")  # arrives while the page is open
    response = client.post(reverse("lab:inbox:acknowledge"), {"shown": inbox_pairs(page)}, follow=True)
    content = response.content.decode()
    assert "Acknowledged 1 result." in content
    assert fresh(first).acknowledged_by == clinician
    assert fresh(late).acknowledged_at is None
    assert inbox_pairs(content) == [f"{late.uuid}:{late.version}"]  # still there, to be read


def test_a_stale_page_is_refused_with_a_message(client: Client, clinician: User) -> None:
    result = hemoglobin(clinician, "6.8")
    client.force_login(clinician)
    page = client.get(reverse("lab:inbox:inbox")).content.decode()
    corrected(result, "12.1")
    response = client.post(reverse("lab:inbox:acknowledge"), {"shown": inbox_pairs(page)}, follow=True)
    content = response.content.decode()
    assert "has been corrected since" in content
    assert "Corrected" in content and "<s>6.8 g/dL</s>" in content
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()


def test_a_swapped_id_is_refused_and_logged_naming_the_patient(client: Client, clinician: User) -> None:
    theirs = hemoglobin(UserFactory(role=roles.ROLE_CLINICIAN), "6.8")
    client.force_login(clinician)
    response = client.post(
        reverse("lab:inbox:acknowledge"), {"shown": [f"{theirs.uuid}:{theirs.version}"]}, follow=True
    )
    assert "only they or a supervisor acknowledge it" in response.content.decode()
    entry = AccessLog.objects.get(object_ref=str(theirs.uuid))
    assert entry.outcome == "denied"
    assert list(entry.patients.values_list("pk", flat=True)) == [theirs.patient_id]
    assert fresh(theirs).acknowledged_at is None


def test_a_malformed_list_is_refused(client: Client, clinician: User) -> None:
    client.force_login(clinician)
    response = client.post(reverse("lab:inbox:acknowledge"), {"shown": ["not-a-uuid:1"]}, follow=True)
    assert "was not understood" in response.content.decode()
    response = client.post(reverse("lab:inbox:acknowledge"), {}, follow=True)
    assert "no results to acknowledge" in response.content.decode()


def test_a_supervisor_opens_an_away_clinicians_inbox_and_signs_for_them(
    client: Client, clinician: User, supervisor: User
) -> None:
    result = hemoglobin(clinician, "10.9")
    client.force_login(supervisor)
    assert inbox_pairs(client.get(reverse("lab:inbox:inbox")).content.decode()) == []  # their own: none
    page = client.get(reverse("lab:inbox:inbox"), {"clinician": clinician.pk}).content.decode()
    assert inbox_pairs(page) == [f"{result.uuid}:{result.version}"]
    response = client.post(
        reverse("lab:inbox:acknowledge"), {"shown": inbox_pairs(page), "clinician": clinician.pk}, follow=True
    )
    assert response.redirect_chain[-1][0].endswith(f"?clinician={clinician.pk}")
    assert fresh(result).acknowledged_by == supervisor


@pytest.mark.parametrize(
    ("role", "inbox", "patient_page"),
    [
        ("clinician", 200, 200),
        ("supervisor", 200, 200),
        ("medical_assistant", 403, 200),
        ("lab_tech", 403, 200),
        ("auditor", 403, 403),
        ("outsider", 403, 403),
    ],
)
def test_pages_per_role(
    client: Client,
    request: pytest.FixtureRequest,
    clinician: User,
    role: str,
    inbox: int,
    patient_page: int,
) -> None:
    result = hemoglobin(clinician, "10.9")
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert client.get(reverse("lab:inbox:inbox")).status_code == inbox
    assert client.get(reverse("lab:inbox:patient", args=[result.patient.uuid])).status_code == patient_page
    entry = AccessLog.objects.filter(user=user, object_ref=str(result.patient.uuid)).get()
    assert entry.outcome == ("ok" if patient_page == 200 else "denied")
    assert list(entry.patients.values_list("pk", flat=True)) == [result.patient_id]


@pytest.mark.parametrize("count", [1, 5])
def test_the_patient_results_page_shows_history_and_chart_in_constant_queries(
    client: Client,
    clinician: User,
    medical_assistant: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    patient = adult()
    for i in range(count):
        hemoglobin(clinician, str(Decimal("12.0") - i), ago_minutes=60 * 24 * (count - i), patient=patient)
    wrong = hemoglobin(clinician, "6.8", patient=patient)
    corrected(wrong, "11.9")
    client.force_login(medical_assistant)
    # 1 session, 2 user, 3 permissions and roles, 4 the patient, 5 the access row with its patient,
    # 6 the results with analyte and test, range, a correction's original and who signed.
    with django_assert_num_queries(6):
        response = client.get(reverse("lab:inbox:patient", args=[patient.uuid]))
    content = response.content.decode()
    assert "Superseded" in content and "Corrected" in content and "<s>6.8 g/dL</s>" in content
    assert content.count("<circle") == count + 1  # the current values, not the superseded one
    assert 'role="img"' in content and "Hemoglobin, " in content  # the chart's text alternative
    assert "11.6\u201315.0 g/dL" in content


def test_an_unknown_patient_is_not_found_and_logged(client: Client, clinician: User) -> None:
    client.force_login(clinician)
    ref = "00000000-0000-4000-8000-000000000000"
    assert client.get(reverse("lab:inbox:patient", args=[ref])).status_code == 404
    assert AccessLog.objects.get(object_ref=ref).outcome == "not_found"


# --- On the handoff, the queue and the board ----------------------------------------------------------


def test_a_released_result_shows_on_the_queue_at_once_though_its_row_was_cached(
    client: Client, clinician: User, medical_assistant: User
) -> None:
    handoff = collected_for(clinician, "Hemoglobin")
    client.force_login(medical_assistant)
    assert "Hgb 6.8" not in client.get(reverse("queue")).content.decode()  # the row is cached now
    released(order_for(handoff, "Hemoglobin"), "6.8")
    content = client.get(reverse("queue")).content.decode()
    assert "Hgb 6.8 g/dL LL critical" in content


def test_a_released_result_shows_on_the_handoff_page(client: Client, clinician: User) -> None:
    handoff = collected_for(clinician, "Hemoglobin", "Urine hCG")
    released(order_for(handoff, "Hemoglobin"), "6.8")
    released(order_for(handoff, "Urine hCG"), "Negative")
    client.force_login(clinician)
    content = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
    assert "Hgb 6.8 g/dL LL critical" in content
    assert "hCG Negative" in content


def test_the_queue_names_abnormal_results_and_counts_the_normal_ones(
    client: Client, clinician: User, medical_assistant: User
) -> None:
    handoff = collected_for(clinician, "Urine dipstick")
    order = order_for(handoff, "Urine dipstick")
    typed = {"GLU": "2+", "BIL": "Negative", "KET": "Negative", "SG": "1.015", "BLD": "Negative"}
    typed |= {"pH": "6.0", "PRO": "Negative", "URO": "0.2", "NIT": "Negative", "LEU": "Negative"}
    for analyte, value in typed.items():
        released(order, value, analyte=analyte)
    client.force_login(medical_assistant)
    content = client.get(reverse("queue")).content.decode()
    assert "GLU 2+ A" in content
    assert "9 normal results" in content


# --- Through the bench's own services ---------------------------------------------------------------


def test_results_from_the_bench_reach_the_inbox_and_a_correction_comes_back_unsigned(
    client: Client, lab_tech: User
) -> None:
    """Entered, verified and released by lab.results.services; amended and released again."""
    from lab.results import services as bench
    from tests.lab.results_helpers import at_bench, enter, passing_lot

    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    verifier = UserFactory(role=roles.ROLE_LAB_TECH)
    specimen = at_bench("Hemoglobin", ma=ma, lab_tech=lab_tech)
    clinician = specimen.handoff.ordering_clinician
    lot = passing_lot("Hemoglobin", by=lab_tech)
    [entered] = enter(specimen, "Hemoglobin", "6.8", by=lab_tech, lot=lot)
    assert selectors.inbox_results(user=clinician, clinician=clinician) == []  # not released yet
    bench.result_verify(result=entered, by=verifier)

    client.force_login(clinician)
    page = client.get(reverse("lab:inbox:inbox")).content.decode()
    [row] = selectors.inbox_results(user=clinician, clinician=clinician)
    assert (row.pk, row.is_critical) == (entered.pk, True)
    assert inbox_pairs(page) == [f"{row.uuid}:{row.version}"]

    amendment = bench.result_amend(result=row, value="11.9", reason="Clotted sample", by=lab_tech)
    bench.result_verify(result=amendment, by=verifier)
    # The page still shows 6.8: signing it now would sign a value that is no longer the result.
    response = client.post(reverse("lab:inbox:acknowledge"), {"shown": inbox_pairs(page)}, follow=True)
    assert "has been corrected since" in response.content.decode()
    [again] = selectors.inbox_results(user=clinician, clinician=clinician)
    assert again.pk == amendment.pk and again.amends is not None and again.amends.display_value == "6.8 g/dL"
    results_acknowledge(shown=shown(again), by=clinician)
    assert fresh(again).acknowledged_by == clinician
    assert fresh(entered).status == ResultStatus.SUPERSEDED and fresh(entered).acknowledged_at is None


def test_the_handoff_page_links_to_the_patients_results(client: Client, clinician: User) -> None:
    handoff = collected_for(clinician, "Hemoglobin")
    client.force_login(clinician)
    content = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
    assert reverse("lab:inbox:patient", args=[handoff.patient.uuid]) in content


def test_hostile_text_is_escaped_on_the_inbox_and_the_patients_results(client: Client, clinician: User) -> None:
    patient = adult(given_name='<script>alert("x")</script>', family_name="<b>Reyes</b>")
    original = hemoglobin(clinician, "6.8", patient=patient)
    corrected(original, "12.0", reason='<img src=x onerror="alert(1)">')
    client.force_login(clinician)
    for url in (reverse("lab:inbox:inbox"), reverse("lab:inbox:patient", args=[patient.uuid])):
        content = client.get(url).content.decode()
        assert "<script>alert" not in content and "<img src=x" not in content and "<B>REYES</B>" not in content
        assert "&lt;script&gt;alert" in content and "&lt;img src=x onerror=" in content


# --- Racing a correction ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_acknowledgement_waits_for_a_correction_being_released_and_then_signs_nothing() -> None:
    """The lab supersedes the result while the clinician clicks: the row lock makes the click wait and see it."""
    import threading

    from django.db import connection, transaction

    clinician = UserFactory(role=roles.ROLE_CLINICIAN)
    original = hemoglobin(clinician, "6.8")
    page = shown(original)
    locked, outcome = threading.Event(), []

    def clinician_clicks() -> None:
        try:
            locked.wait(timeout=30)
            results_acknowledge(shown=page, by=User.objects.get(pk=clinician.pk))
            outcome.append("signed")
        except TransitionNotAllowed as exc:
            outcome.append(str(exc))
        finally:
            connection.close()

    click = threading.Thread(target=clinician_clicks)
    click.start()
    with transaction.atomic():  # the correction's release, holding the original's row
        Result.objects.select_for_update().get(pk=original.pk)
        locked.set()
        click.join(timeout=1)
        assert click.is_alive()  # the acknowledgement waits on the lock
        corrected(original, "12.0")
    click.join(timeout=30)
    assert not click.is_alive()
    assert len(outcome) == 1 and "has been corrected since" in outcome[0]
    assert not Result.objects.filter(acknowledged_at__isnull=False).exists()
