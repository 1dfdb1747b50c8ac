"""The turnaround dashboard: figures computed in Postgres match the same figures computed here."""

import csv
import datetime as dt
import io
import itertools
import math
import statistics
from collections import defaultdict

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.models import AccessAction, AccessLog, AccessLogPatient, Handoff, User
from backoffice.workflow import Priority
from lab.criticals.services import critical_call_attempt
from lab.models import CriticalCall, SendOut, TestOrder
from lab.turnaround import selectors
from lab.turnaround.selectors import Bucket, GroupBy, Stats
from lab.workflow import CallOutcome, SendOutStatus, TestOrderStatus
from specimens.models import Specimen
from tests.factories import HandoffFactory, StationFactory
from tests.lab.helpers import released_critical_result, test_named
from tests.lab.sendout_helpers import reference_lab

pytestmark = pytest.mark.django_db

_accessions = itertools.count(1)


@pytest.fixture(autouse=True)
def computed_each_time(settings):  # type: ignore[no-untyped-def]
    """The figures' SQL is what these tests check: nothing kept between two calls (but in TestKept)."""
    settings.TURNAROUND_CACHE_SECONDS = 0


def percentile_cont(values: list[float], fraction: float) -> float:
    """Postgres' percentile_cont: linear interpolation between the two nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected(values: list[float], left_out: int) -> Stats:
    if not values:
        return Stats(count=0, left_out=left_out, median=None, p90=None, max=None)
    return Stats(
        count=len(values),
        left_out=left_out,
        median=statistics.median(values),
        p90=percentile_cont(values, 0.9),
        max=max(values),
    )


def assert_stats(got: Stats, want: Stats) -> None:
    assert got.count == want.count
    assert got.left_out == want.left_out
    for name in ("median", "p90", "max"):
        g, w = getattr(got, name), getattr(want, name)
        assert (g is None) == (w is None), name
        if w is not None:
            assert g == pytest.approx(w, abs=1e-6), name


def _at(base: dt.datetime, minutes: float | None) -> dt.datetime | None:
    return None if minutes is None else base + dt.timedelta(minutes=minutes)


def ordered_test(
    short_name: str,
    *,
    created: dt.datetime,
    by: User,
    collected: float | None = None,
    received: float | None = None,
    resulted: float | None = None,
    released: float | None = None,
    priority: int = Priority.ROUTINE,
    station: object = None,
    status: str = TestOrderStatus.RESULTED,
) -> TestOrder:
    """A test order and its specimen as plain rows, with its times in minutes after it was ordered."""
    test = test_named(short_name)
    handoff = HandoffFactory(priority=priority)
    # Seen and done: a station holds one open handoff at a time, and these are history.
    Handoff.objects.filter(pk=handoff.pk).update(
        status="completed", claimed_by=by, identity_verified_at=created, station=station
    )
    specimen = Specimen.objects.create(
        accession=f"TAT{next(_accessions):05d}",
        handoff=handoff,
        patient=handoff.patient,
        specimen_type=test.specimen_type,
        container=test.container,
        collection_method=test.specimen_type.collection_method,
        labelled_by=by,
    )
    Specimen.objects.filter(pk=specimen.pk).update(
        collected_at=_at(created, collected),
        received_at=_at(created, received),
        received_by=by if received is not None else None,
    )
    order = TestOrder.objects.create(handoff=handoff, test=test, created_by=by, specimen=specimen)
    TestOrder.objects.filter(pk=order.pk).update(
        created_at=created,
        status=status,
        resulted_at=_at(created, resulted),
        released_at=_at(created, released),
        cancel_reason="other" if status == TestOrderStatus.CANCELLED else "",
        cancelled_by=by if status == TestOrderStatus.CANCELLED else None,
    )
    order.refresh_from_db()
    return order


def send_out(order: TestOrder, *, lab, sent: float, final: float | None, overdue: bool = False) -> SendOut:  # type: ignore[no-untyped-def]
    created = order.created_at
    return SendOut.objects.create(
        order=order,
        reference_lab=lab,
        orderable=lab.orderables.get(test=order.test),
        placer_number=f"P{order.pk}",
        status=SendOutStatus.FINAL if final is not None else SendOutStatus.SENT,
        sent_at=_at(created, sent),
        expected_by=_at(created, sent + 24 * 60),
        final_at=_at(created, final),
        overdue_since=_at(created, sent + 24 * 60) if overdue else None,
    )


@pytest.fixture
def day() -> dt.datetime:
    """Three days ago, 09:00 in the clinic's time zone."""
    today = timezone.localdate()
    return timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=3), dt.time(9)))


@pytest.fixture
def clinic(day: dt.datetime, lab_tech: User):  # type: ignore[no-untyped-def]
    """Six orders over three days, one cancelled and one too old; two of them sent out.

    order  test        priority station  collected received resulted released  sent  final
    o1     Hemoglobin  routine  A        10        15       30       40
    o2     Hemoglobin  STAT     A        5         7        12       20
    o3     Urine hCG   routine  B        30        45       60       90        (a day later)
    o4     Urine hCG   routine  B        20        -        -        -         (a day later)
    o5     CBC         routine  -        15        25       1500     1500      60    1500 (two days later)
    o6     CBC         STAT     A        10        20       -        -         30    - overdue (two days later)
    """
    a, b = StationFactory(name="Draw room A"), StationFactory(name="Draw room B")
    lab = reference_lab("CBC", name="Quest Diagnostics West")
    later, two_later = day + dt.timedelta(days=1), day + dt.timedelta(days=2)
    ordered_test("Hemoglobin", created=day, by=lab_tech, collected=10, received=15, resulted=30, released=40, station=a)
    ordered_test(
        "Hemoglobin",
        created=day,
        by=lab_tech,
        collected=5,
        received=7,
        resulted=12,
        released=20,
        station=a,
        priority=Priority.STAT,
    )
    ordered_test(
        "Urine hCG", created=later, by=lab_tech, collected=30, received=45, resulted=60, released=90, station=b
    )
    ordered_test("Urine hCG", created=later, by=lab_tech, collected=20, station=b, status=TestOrderStatus.COLLECTED)
    o5 = ordered_test("CBC", created=two_later, by=lab_tech, collected=15, received=25, resulted=1500, released=1500)
    send_out(o5, lab=lab, sent=60, final=1500)
    o6 = ordered_test(
        "CBC",
        created=two_later,
        by=lab_tech,
        collected=10,
        received=20,
        station=a,
        priority=Priority.STAT,
        status=TestOrderStatus.SENT_OUT,
    )
    send_out(o6, lab=lab, sent=30, final=None, overdue=True)
    # Neither counts: cancelled, and ordered before the range.
    ordered_test("Hemoglobin", created=day, by=lab_tech, collected=1, status=TestOrderStatus.CANCELLED)
    ordered_test(
        "Hemoglobin", created=day - dt.timedelta(days=40), by=lab_tech, collected=1, received=2, resulted=3, released=4
    )
    return {"a": a, "b": b, "lab": lab}


def figures(user: User, day: dt.datetime, **kwargs: str) -> selectors.Dashboard:
    return selectors.dashboard(user=user, since=day.date(), until=timezone.localdate(), **kwargs)  # type: ignore[arg-type]


# (segment, values counted, left out): the table in `clinic` read column by column.
OVERALL = {
    "order_collection": ([10, 5, 30, 20, 15, 10], 0),
    "collection_receipt": ([5, 2, 15, 10, 10], 1),
    "receipt_result": ([15, 5, 15, 1475], 2),
    "result_verification": ([10, 8, 30], 1),  # in-house only: the reference lab verifies its own
    "order_release": ([40, 20, 90, 1500], 2),
    "sent_final": ([1440], 1),
    "critical_read_back": ([], 0),
}


def test_every_segment_matches_the_same_figures_computed_here(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    got = {segment.key: stats for segment, stats in figures(supervisor, day).overview}
    assert list(got) == [s.key for s in selectors.SEGMENTS]
    for key, (values, left_out) in OVERALL.items():
        assert_stats(got[key], expected(values, left_out))


def test_the_overdue_send_outs_are_counted(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    assert figures(supervisor, day).overdue == 1


@pytest.mark.parametrize(
    ("group", "want"),
    [
        (GroupBy.TEST, {"CBC": ([1500], 1), "Hemoglobin": ([40, 20], 0), "Urine hCG": ([90], 1)}),
        (GroupBy.PRIORITY, {"STAT": ([20], 1), "Routine": ([40, 90, 1500], 1)}),
        (GroupBy.STATION, {"Draw room A": ([40, 20], 1), "Draw room B": ([90], 1), "No station": ([1500], 0)}),
        (GroupBy.LAB, {"In-house": ([40, 20, 90], 1), "Quest Diagnostics West": ([1500], 1)}),
    ],
)
def test_order_to_release_by_group(clinic, day, supervisor, group, want) -> None:  # type: ignore[no-untyped-def]
    rows = figures(supervisor, day, group=group).by_group
    assert {r.label for r in rows} == set(want)
    for row in rows:
        values, left_out = want[row.label]
        assert_stats(row.stats, expected(values, left_out))
        assert row.is_stat == (row.label == "STAT")
    if group == GroupBy.PRIORITY:
        assert next(r for r in rows if r.is_stat).stats.stat_count == 1


def test_order_to_release_by_day_fills_the_empty_days(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    rows = figures(supervisor, day, bucket=Bucket.DAY).by_bucket
    assert [r.label for r in rows] == [f"{day.date() + dt.timedelta(days=i):%Y-%m-%d}" for i in range(4)]
    assert_stats(rows[0].stats, expected([40, 20], 0))
    assert_stats(rows[1].stats, expected([90], 1))
    assert_stats(rows[2].stats, expected([1500], 1))
    assert_stats(rows[3].stats, expected([], 0))
    assert rows[0].stat is not None
    assert_stats(rows[0].stat, expected([20], 0))  # the STAT orders' own figures
    assert rows[0].stats.stat_count == 1


@pytest.mark.parametrize("bucket", [Bucket.WEEK, Bucket.MONTH])
def test_order_to_release_by_week_and_month(clinic, day, supervisor, bucket) -> None:  # type: ignore[no-untyped-def]
    values = {0: ([40, 20], 0), 1: ([90], 1), 2: ([1500], 1)}
    want: dict[str, tuple[list[float], int]] = defaultdict(lambda: ([], 0))
    for offset, (vals, left) in values.items():
        d = day.date() + dt.timedelta(days=offset)
        key = f"{d:%Y-%m}" if bucket == Bucket.MONTH else f"Week of {d - dt.timedelta(days=d.weekday()):%Y-%m-%d}"
        want[key] = (want[key][0] + vals, want[key][1] + left)
    rows = {r.label: r.stats for r in figures(supervisor, day, bucket=bucket).by_bucket}
    for label, stats in rows.items():
        assert_stats(stats, expected(*want.get(label, ([], 0))))
    assert set(want) <= set(rows)


def test_a_segment_is_chosen_for_its_groups_and_histogram(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    dash = figures(supervisor, day, segment="collection_receipt", group=GroupBy.STATION)
    assert dash.segment.key == "collection_receipt"
    station_a = next(r for r in dash.by_group if r.label == "Draw room A")
    assert_stats(station_a.stats, expected([5, 2, 10], 0))
    # Five counted, in round bars from 0; the STAT ones (2 and 10 minutes) counted apart.
    bars = dash.histogram
    assert sum(b.count for b in bars) == 5
    assert sum(b.stat_count for b in bars) == 2
    assert bars[0].start == 0 and bars[-1].end is None


def test_a_send_out_is_measured_from_sent_to_final_by_lab(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    [row] = figures(supervisor, day, segment="sent_final", group=GroupBy.LAB).by_group
    assert row.label == "Quest Diagnostics West"
    assert_stats(row.stats, expected([1440], 1))


def test_critical_results_count_only_a_read_back(supervisor, lab_tech) -> None:  # type: ignore[no-untyped-def]
    result = released_critical_result()  # one unanswered call so far
    call = CriticalCall.objects.get(result=result)
    today = timezone.localdate()
    dash = selectors.dashboard(user=supervisor, since=today, until=today, segment="critical_read_back")
    assert_stats(dash.total, expected([], 1))
    critical_call_attempt(
        call=call,
        by=lab_tech,
        contact_name="Dr. Shah",
        contact_role="Ordering clinician",
        outcome=CallOutcome.READ_BACK,
        read_back_identifiers="Full name, DOB",
        read_back_value="Hemoglobin 6.8 g/dL",
    )
    call.refresh_from_db()
    CriticalCall.objects.filter(pk=call.pk).update(closed_at=call.opened_at + dt.timedelta(minutes=12))
    dash = selectors.dashboard(user=supervisor, since=today, until=today, segment="critical_read_back")
    assert_stats(dash.total, expected([12], 0))
    [row] = dash.by_group
    assert row.label == "Hemoglobin"


def test_the_services_stamp_when_a_test_was_resulted_and_released(supervisor) -> None:  # type: ignore[no-untyped-def]
    result = released_critical_result()
    order = TestOrder.objects.get(pk=result.order_id)
    assert order.status == TestOrderStatus.RESULTED
    assert order.resulted_at is not None and order.released_at is not None
    assert order.resulted_at <= order.released_at == result.released_at
    today = timezone.localdate()
    overview = dict(selectors.dashboard(user=supervisor, since=today, until=today).overview)
    assert overview[selectors.BY_KEY["order_release"]].count == 1
    assert overview[selectors.BY_KEY["result_verification"]].count == 1


def test_the_query_count_stays_the_same_with_more_orders(  # type: ignore[no-untyped-def]
    clinic, day, supervisor, lab_tech, django_assert_num_queries
) -> None:
    supervisor.has_perm(selectors.PERMISSION)  # the permission cache: loaded once per request in the app

    def count() -> None:
        # 1-3: the overview of test orders, critical calls and send-outs; 4: the segment by group;
        # 5: by bucket; 6: by bucket, the STAT ones alone; 7: the histogram.
        with django_assert_num_queries(7):
            figures(supervisor, day, group=GroupBy.STATION, bucket=Bucket.WEEK)

    count()
    for minutes in range(20):
        ordered_test(
            "Urine hCG", created=day, by=lab_tech, collected=minutes, received=minutes + 5, station=clinic["b"]
        )
    count()


# --- The pages ---------------------------------------------------------------------------------------


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_shows_the_figures_and_the_charts_data(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    response = _signed_in(supervisor).get(reverse("lab:turnaround:dashboard"), {"since": f"{day.date():%Y-%m-%d}"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="turnaround-data"' in html and 'type="application/json"' in html
    assert "chartjs-4.6.1/chart.umd.min.js" in html and "js/turnaround.js" in html
    assert "<script>" not in html  # every script is a file, with the nonce (CSP)
    assert "Order → release" in html and "n/a" in html
    chart = response.context["chart"]
    assert chart["unit"] == "h"  # a 90th percentile past 3 hours is drawn in hours
    assert sum(chart["histogram"]["routine"]) + sum(chart["histogram"]["stat"]) == 4
    assert not AccessLog.objects.filter(action=AccessAction.EXPORT).exists()


def test_the_csv_export_has_the_figures_and_is_logged_without_patients(clinic, day, supervisor) -> None:  # type: ignore[no-untyped-def]
    since = f"{day.date():%Y-%m-%d}"
    response = _signed_in(supervisor).get(reverse("lab:turnaround:export_csv"), {"since": since, "group": "priority"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["Section", "Segment", "Group", "Count", "Left out (n/a)"]
    assert ["All", "Order → release", "All", "4", "2", "65.0", "1077.0", "1500.0"] in rows
    assert ["All", "Critical result → read-back", "All", "0", "0", "n/a", "n/a", "n/a"] in rows
    assert ["Overdue send-outs", "Send-out sent → final", "All", "1", "", "", "", ""] in rows
    assert ["By priority", "Order → release", "STAT", "1", "1", "20.0", "20.0", "20.0"] in rows
    assert sum(1 for r in rows if r[0] == "By day") == 4
    entry = AccessLog.objects.get(action=AccessAction.EXPORT)
    assert entry.what == "turnaround times CSV"
    assert entry.user == supervisor
    assert entry.object_ref == f"{since}..{timezone.localdate():%Y-%m-%d}"
    assert not AccessLogPatient.objects.filter(log=entry).exists()


@pytest.mark.parametrize("role", ["medical_assistant", "clinician", "lab_tech", "admin_user", "auditor", "outsider"])
@pytest.mark.parametrize("name", ["lab:turnaround:dashboard", "lab:turnaround:export_csv"])
def test_only_supervisors_see_turnaround_times(request, role, name) -> None:  # type: ignore[no-untyped-def]
    user = request.getfixturevalue(role)
    response = _signed_in(user).get(reverse(name))
    assert response.status_code == 403
    refusal = AccessLog.objects.get(action=AccessAction.DENIED)
    assert refusal.user == user
    assert refusal.what.startswith("turnaround times")
    assert not AccessLogPatient.objects.filter(log=refusal).exists()
    assert not AccessLog.objects.filter(action=AccessAction.EXPORT).exists()


def test_a_supervisor_sees_turnaround_in_the_menu(supervisor, lab_tech) -> None:  # type: ignore[no-untyped-def]
    url = reverse("lab:turnaround:dashboard")
    assert f'href="{url}"' in _signed_in(supervisor).get(reverse("queue")).content.decode()
    assert f'href="{url}"' not in _signed_in(lab_tech).get(reverse("queue")).content.decode()


# --- Kept a few minutes ----------------------------------------------------------------------------


class TestKept:
    @pytest.fixture(autouse=True)
    def kept(self, settings):  # type: ignore[no-untyped-def]
        settings.TURNAROUND_CACHE_SECONDS = 300

    def test_the_same_choice_again_costs_no_query_and_is_as_of_when_it_was_computed(  # type: ignore[no-untyped-def]
        self, clinic, day, supervisor, lab_tech, django_assert_num_queries
    ) -> None:
        supervisor.has_perm(selectors.PERMISSION)
        first = figures(supervisor, day, group=GroupBy.STATION)
        ordered_test("Urine hCG", created=day, by=lab_tech, collected=3, received=4, resulted=5, released=6)
        with django_assert_num_queries(0):
            again = figures(supervisor, day, group=GroupBy.STATION)
        assert again.as_of == first.as_of
        assert again.segment is first.segment  # pickled by its key: the module's own Segment
        assert again.total == first.total  # the order added shows when the figures are next computed
        with django_assert_num_queries(7):
            other = figures(supervisor, day, group=GroupBy.TEST)  # another choice is its own figures
        assert other.total.count == first.total.count + 1

    def test_a_role_that_may_not_is_refused_even_when_the_figures_are_kept(  # type: ignore[no-untyped-def]
        self, clinic, day, supervisor, lab_tech
    ) -> None:
        figures(supervisor, day)
        with pytest.raises(PermissionDenied):
            figures(lab_tech, day)

    def test_the_page_says_as_of_when_and_how_often_they_are_recomputed(  # type: ignore[no-untyped-def]
        self, clinic, day, supervisor
    ) -> None:
        client = _signed_in(supervisor)
        url = reverse("lab:turnaround:dashboard")
        first = client.get(url, {"since": f"{day.date():%Y-%m-%d}"})
        as_of = first.context["figures"].as_of
        assert f"as of {timezone.localtime(as_of):%H:%M}, recomputed every 5 min" in first.content.decode()
        again = client.get(url, {"since": f"{day.date():%Y-%m-%d}"})
        assert again.context["figures"].as_of == as_of


def test_the_fields_show_the_dates_the_figures_are_for(supervisor) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    client = _signed_in(supervisor)
    url = reverse("lab:turnaround:dashboard")
    html = client.get(url, {"segment": "critical_read_back"}).content.decode()  # no dates asked: the last 30 days
    assert f'name="since" value="{today - dt.timedelta(days=29):%Y-%m-%d}"' in html
    assert f'name="until" value="{today:%Y-%m-%d}"' in html
    swapped = client.get(url, {"since": f"{today:%Y-%m-%d}", "until": f"{today - dt.timedelta(days=3):%Y-%m-%d}"})
    assert f'name="since" value="{today - dt.timedelta(days=3):%Y-%m-%d}"' in swapped.content.decode()
    wrong = client.get(url, {"since": "13/45/2026"}).content.decode()
    assert 'name="since" value="13/45/2026"' in wrong and "Enter a valid date" in wrong  # kept, with its error
