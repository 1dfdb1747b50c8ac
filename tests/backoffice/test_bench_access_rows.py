"""`make bench --access-rows N`: the loader tops the access log up to N rows over six years, once, and the
auditor's searches the bench posts are ones the access-log page answers. Nothing here times anything."""

from datetime import timedelta
from urllib.parse import parse_qsl

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from backoffice import roles
from backoffice.devtools.bench import access_rows
from backoffice.models import AccessLog, AccessLogPatient
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _url() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname") and v}
    )


def test_the_loader_tops_the_log_up_over_six_years_once() -> None:
    staff = UserFactory.create_batch(2)
    patients = PatientFactory.create_batch(3)
    said: list[str] = []

    info = access_rows.load(_url(), 25, say=said.append)

    assert info == {"access_rows_before": 0, "access_rows_loaded": 25, "load_seconds": info["load_seconds"]}
    assert AccessLog.objects.count() == 25 and AccessLogPatient.objects.count() == 25
    assert set(AccessLog.objects.values_list("user_id", flat=True)) == {u.pk for u in staff}
    assert set(AccessLogPatient.objects.values_list("patient_id", flat=True)) <= {p.pk for p in patients}
    oldest, newest = AccessLog.objects.order_by("at").first(), AccessLog.objects.order_by("-at").first()
    assert oldest is not None and newest is not None
    assert timezone.now() - oldest.at > timedelta(days=6 * 365 - 100)  # spread over the six years
    assert timezone.now() - newest.at < timedelta(days=1)
    # Each loaded row is the patient row's time too, as the log writes them.
    row = AccessLogPatient.objects.select_related("log").first()
    assert row is not None and row.at == row.log.at
    assert "25 of 25 rows" in said[-1]

    again = access_rows.load(_url(), 25, say=said.append)

    assert again["access_rows_loaded"] == 0 and AccessLog.objects.count() == 25


def test_the_auditor_s_searches_are_answered_by_the_access_log_page(client: Client) -> None:
    UserFactory()
    patient = PatientFactory()
    access_rows.load(_url(), 10, say=lambda _: None)
    client.force_login(UserFactory(role=roles.ROLE_AUDITOR))

    searches = access_rows.searches(_url())

    assert [label for label, _ in searches] == ["access log (auditor)", "access log, one patient (auditor)"]
    assert f"patient={patient.mrn}&" in searches[1][1]
    # The whole log: the ten loaded rows. The patient: the ten (each names them, the only patient)
    # and the first search's own access row, which named them too.
    for (_, body), rows in zip(searches, (10, 11), strict=True):
        response = client.post("/audit/", dict(parse_qsl(body, keep_blank_values=True)))
        assert response.status_code == 200
        assert len(response.context["rows"]) == rows
