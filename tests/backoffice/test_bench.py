"""The benchmark's helpers, and the result-entry pool it posts to. Nothing here times anything: `make bench`
does, on a quiet machine."""

import re
from collections import Counter
from datetime import timedelta
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from backoffice.devtools.bench import __main__ as bench
from backoffice.devtools.bench import intake as bench_intake
from backoffice.devtools.bench import labels
from backoffice.devtools.seed import entry_pool
from backoffice.devtools.seed.catalogs import demo_authenticator
from backoffice.devtools.seed.common import seeded_rng
from backoffice.devtools.seed.sendouts import DEMO_LABS
from backoffice.models import Handoff, HandoffEvent, User
from backoffice.workflow import HandoffStatus
from lab.models import KitLot, QCRun, Result, SendOut
from lab.qc.lockout import qc_block
from lab.results import selectors as results_selectors
from lab.sendouts import selectors as sendout_selectors
from lab.workflow import ResultStatus, SendOutStatus
from specimens import selectors
from specimens.models import Specimen
from tests.factories import UserFactory


def test_the_bench_counts_the_statuses_the_tracking_list_shows() -> None:
    assert tuple(str(s) for s in selectors.TRACKED_STATUSES) == bench.TRACKED_STATUSES


def test_summarise_reports_median_and_p95_in_milliseconds() -> None:
    samples = [n * 1_000_000 for n in range(1, 101)]  # 1 ms … 100 ms

    timing = labels.summarise("PDF", samples, output_bytes=2048)

    assert (timing.runs, timing.median_ms, timing.output_bytes) == (100, 50.5, 2048)
    assert 95 <= timing.p95_ms <= 96


def test_time_calls_warms_up_then_keeps_one_sample_per_timed_call() -> None:
    calls = 0

    def render() -> str:
        nonlocal calls
        calls += 1
        return "^XA…^XZ"

    samples, size = labels.time_calls(render, warmup=3, runs=5)

    assert calls == 8
    assert len(samples) == 5 and all(ns >= 0 for ns in samples)
    assert size == len("^XA…^XZ".encode())


def test_every_case_renders_the_draw() -> None:
    outputs = {name: render() for name, render in labels.CASES}

    assert outputs["PDF, 2 labels (EDTA + cup)"].startswith(b"%PDF")
    assert isinstance(outputs["ZPL, 2 labels (EDTA + cup)"], str)
    assert outputs["ZPL, 2 labels (EDTA + cup)"].count("^XA") == 2


# --- Result entry (POST) -------------------------------------------------------------------------


def test_the_bench_finds_the_pool_by_the_seeds_mark() -> None:
    assert bench.ENTRY_POOL_NOTE == entry_pool.ENTRY_POOL_NOTE


def test_the_timed_pool_is_the_warm_up_rate_for_the_duration_with_headroom() -> None:
    # 80 entries a second for 15 s, half as much again, and two per connection in flight.
    assert bench.entry_pool_size(80, duration=15, connections=16) == 1800 + 32
    assert bench.entry_pool_size(0, duration=15, connections=16) == 32


def test_a_post_that_entered_nothing_or_ran_past_the_pool_is_an_error() -> None:
    raw = {
        "requests": 100,
        "duration_us": 10_000_000,
        "p50_us": 1000,
        "p95_us": 2000,
        "p99_us": 3000,
        "errors_connect": 0,
        "errors_read": 0,
        "errors_write": 0,
        "errors_status": 0,
        "errors_timeout": 0,
        "unexpected_status": 1,
        "posts_sent": 100,
        "past_pool": 1,
    }
    pool = bench.EntryPool(kit_lot=1, analyte=2, value="Negative", items=[("s", "o", n) for n in range(101)])

    row = bench.entry_result(raw, pool, written=97, rows=97)

    assert row.errors == 1 + 3 + 1  # the /healthz past the pool, three POSTs that entered nothing, past the pool
    assert row.notes["panels_entered"] == 97 and row.notes["posts_not_entered"] == 3
    assert row.notes["pool_specimens"] == 101 and row.notes["past_the_pool"] == 1


def lua_body(template: str, fields: tuple[str, str, int], csrf: str) -> str:
    """What report.lua sends: {csrf} and {1}, {2}… replaced by the token and the line's fields."""
    return re.sub(r"{(\w+)}", lambda m: csrf if m[1] == "csrf" else str(fields[int(m[1]) - 1]), template)


@pytest.fixture
def seeded(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for args in ((), ("--scale", "--patients", "200", "--handoffs", "50", "--open", "5")):
        call_command("seed_demo", *args, stdout=StringIO())


@pytest.mark.django_db
@pytest.mark.usefixtures("seeded")
def test_the_pool_s_posts_enter_results_once_and_the_pool_is_finished_through_the_services() -> None:
    tech = User.objects.get(username="labtech")
    on_bench_before = len(results_selectors.bench_list(user=tech))
    tracked_before = Specimen.objects.filter(status__in=bench.TRACKED_STATUSES).count()

    made = entry_pool.seed_entry_pool(4)

    assert len(made.items) == 4 and len(entry_pool.pending_items()) == 4
    assert len(results_selectors.bench_list(user=tech)) == on_bench_before + 4
    # Visits of scale patients, completed, with the events the scale loader writes; not the demo clinicians'.
    for handoff in Handoff.objects.filter(clinical_note=entry_pool.ENTRY_POOL_NOTE).prefetch_related("events"):
        assert handoff.status == HandoffStatus.COMPLETED and handoff.patient.mrn.startswith("S")
        assert [e.action for e in handoff.events.all()][-1] == HandoffEvent.Action.COMPLETED
        assert handoff.ordering_clinician.username.startswith("scale-clin-")
    # Topping up to what is already pending adds nothing.
    assert entry_pool.seed_entry_pool(4).items == made.items

    pool = bench.EntryPool(
        made.kit_lot_id,
        made.analyte_id,
        made.value,
        [(str(i.specimen_uuid), str(i.order_uuid), i.order_id) for i in made.items],
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(tech)
    client.get("/lab/results/")  # the bench page's scan form sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    template = bench.entry_body(pool)

    def post(item: tuple[str, str, int]) -> int:
        response = client.post(
            f"/lab/results/specimens/{item[0]}/enter/",
            data=lua_body(template, item, csrf),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_CSRFTOKEN=csrf,
        )
        assert response["Location"] == f"/lab/results/specimens/{item[0]}/"
        return response.status_code

    assert [post(item) for item in pool.items[:3]] == [302, 302, 302]
    entered = Result.objects.filter(order_id__in=pool.order_ids)
    assert entered.count() == 3 and {r.value_text for r in entered} == {"Negative"}
    assert not entered.filter(is_critical=True).exists()
    # The same specimen again: the same redirect, nothing written. Hence the bench counts entries in the database.
    assert post(pool.items[0]) == 302
    assert entered.count() == 3

    finished = entry_pool.finish_entry_pool()

    assert finished == {"entered_now": 1, "released": 4, "signed": 4}
    assert len(results_selectors.bench_list(user=tech)) == on_bench_before
    assert Specimen.objects.filter(status__in=bench.TRACKED_STATUSES).count() == tracked_before
    assert not entry_pool.pending_items()
    pool_results = Result.objects.filter(order__in=entry_pool.pool_orders())
    assert pool_results.count() == 4
    assert not pool_results.exclude(status=ResultStatus.RELEASED).exists()
    assert not pool_results.filter(acknowledged_at__isnull=True).exists()
    assert entry_pool.finish_entry_pool() == {"entered_now": 0, "released": 0, "signed": 0}


@pytest.mark.django_db
@pytest.mark.usefixtures("seeded")
def test_the_pool_runs_the_strep_kit_s_daily_qc_when_it_is_due() -> None:
    test = entry_pool.strep_test()
    tech = User.objects.get(username="labtech")
    tomorrow = timezone.now() + timedelta(days=1)
    runs = QCRun.objects.count()

    with mock.patch("django.utils.timezone.now", return_value=tomorrow):
        assert all(qc_block(test, lot) for lot in KitLot.objects.filter(kit__tests=test))
        lot = entry_pool.ensure_passing_lot(test, by=tech)

        assert qc_block(test, lot) is None
    # The negative and the positive control, through the QC service, both passed.
    assert QCRun.objects.count() == runs + 2
    assert QCRun.objects.filter(kit_lot=lot, performed_at=tomorrow, passed=True).count() == 2


# --- The send-out desk and the HL7 intake ------------------------------------------------------------


def test_every_panel_reports_numbers_with_units_ranges_and_the_flags_the_ranges_call_for() -> None:
    for loinc in bench_intake.TEST_MIX:
        for seed in range(40):
            rows, _notes = bench_intake.observations(loinc, seeded_rng(seed))
            assert rows
            for row in rows:
                assert row.flag in ("", "H", "L")  # never critical: a call-back the pages would pile up
                if row.value_type == "NM":
                    assert row.unit and row.range
                    low, _, high = row.range.partition("-")
                    if high and not row.range.startswith(("<", ">")):
                        value = float(row.value)
                        expected = "H" if value > float(high) else "L" if value < float(low) else ""
                        assert row.flag == expected, (loinc, row)
    kinds = {r.value_type for s in range(40) for loinc in bench_intake.TEST_MIX for r in bench_intake.observations(loinc, seeded_rng(s))[0]}  # fmt: skip
    assert kinds == {"NM", "SN", "ST"}


def test_percentiles_msa_and_the_run_tag() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert (bench.percentile(samples, 0.5), bench.percentile(samples, 0.95)) == (50.0, 95.0)
    assert bench.percentile([], 0.5) == 0.0
    ack = "MSH|^~\\&|CLINICBO|CLINIC|LAB|LAB|20260302101500||ACK^R01|X1|P|2.5.1\rMSA|AA|CTRL42\r"
    assert bench.msa(ack) == ("AA", "CTRL42")
    assert bench.control_id("MSH|^~\\&|A|B|C|D|20260302||ORU^R01|CTRL42|P|2.3\rPID|1\r") == "CTRL42"
    assert len(bench.run_tag()) == 6


def database_url() -> str:
    """The test database, for the bench's own reads (psycopg) and its subprocesses."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("seeded")
def test_the_intake_s_send_outs_messages_and_read_back(tmp_path: Path) -> None:
    info = bench_intake.prepare_intake(count=9, mllp=3, tag="test01", folder=str(tmp_path), files=2)

    assert info["send_outs_imported"] == 12 and info["messages"] == 9 and info["mllp_messages"] == 3
    assert len(info["files"]) == 2 and set(info["by_lab"]) == {lab.name for lab in DEMO_LABS}
    assert SendOut.objects.filter(placer_number__startswith="BItest01", status=SendOutStatus.SENT).count() == 12
    call_command("hl7_import", *info["files"], stdout=StringIO())

    db_url = database_url()
    outcomes = bench.inbound_outcomes(db_url, sources=info["files"])
    filed = bench.intake_filed(db_url, sources=info["files"])
    row = bench.intake_result(info, 2.0, outcomes, filed)

    assert outcomes == {"matched": 9}
    assert filed["result_rows"] == filed["observations_filed"] == info["observations_in_batch"] > 9
    assert Result.objects.filter(inbound__source__in=info["files"]).count() == info["observations_in_batch"]
    assert filed["send_outs_final"] == 9 and row["all_stored_matched_filed"] and row["messages_per_s"] == 4.5
    # A message that didn't file is said: the row is not a measurement of a complete intake.
    assert not bench.intake_result(info, 2.0, {"matched": 8, "unmatched": 1}, filed)["all_stored_matched_filed"]

    mllp = bench.mllp_phase(db_url, info["mllp_file"], connect_as="")  # the test database has no app role

    assert mllp["messages"] == 3 and mllp["acks_aa_echoing_msh10"] == 3 and not mllp["not_aa_or_wrong_msa2"]
    assert mllp["outcomes"] == {"matched": 3} and mllp["send_outs_final"] == 3
    assert mllp["result_rows"] == mllp["observations_filed"] > 3
    assert 0 < mllp["p50_ms"] <= mllp["p95_ms"] <= mllp["max_ms"]


@pytest.mark.django_db
@pytest.mark.usefixtures("seeded")
def test_the_desk_is_topped_up_once_and_its_page_shows_it() -> None:
    before = Counter(SendOut.objects.values_list("status", flat=True))

    counts = bench_intake.prepare_desk(waiting=3, packed=2, sent=4)

    assert counts["desk_waiting"] == before[SendOutStatus.WAITING] + 3
    assert counts["desk_packed"] == before[SendOutStatus.PACKED] + 2
    assert counts["desk_sent"] == before[SendOutStatus.SENT] + before[SendOutStatus.PRELIMINARY] + 4
    assert bench_intake.prepare_desk(waiting=3, packed=2, sent=4) == counts  # topped up: nothing more
    client = Client()
    client.force_login(User.objects.get(username="labtech"))
    response = client.get("/lab/send-outs/")
    assert response.status_code == 200
    # The bench's tubes are at the desk, in its groups by lab and temperature; the packed ones in shipments.
    desk = sendout_selectors.desk(user=User.objects.get(username="labtech"))
    listed = {s.pk for g in desk.groups for t in g.tubes for s in t.send_outs}
    ours = SendOut.objects.filter(order__handoff__clinical_note=bench_intake.DESK_NOTE)
    assert set(ours.filter(status=SendOutStatus.WAITING).values_list("pk", flat=True)) <= listed
    assert ours.filter(status=SendOutStatus.PACKED, shipment__status="open").count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_bench_signs_a_supervisor_in_past_the_code_step(live_server, settings: Settings) -> None:
    # The password's redirect goes to the start page; the second-factor middleware sends her on to the
    # code page from there (a sign-in that assumed the code page came at once never verified).
    settings.OTP_REQUIRED_ROLES = ["Supervisor"]
    user = UserFactory(username="bench-supervisor", password=bench.DEMO_PASSWORD, role="Supervisor")
    assert demo_authenticator(user)
    cookie, _ = bench.login(live_server.url, "bench-supervisor")
    bench.expect_status(live_server.url, "/board/", cookie, 200)
