"""Break-glass: emergency access to one patient's record, with a reason, time-limited, flagged, reported."""

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.audit import break_glass
from backoffice.models import AccessLog, BreakGlass, BreakGlassAccess, Handoff, Patient, User
from tests.factories import HandoffFactory, PatientFactory

pytestmark = pytest.mark.django_db

REASON = "Collapsed in the waiting room; need allergies and today's orders"


def ask(client: Client, patient: Patient, reason: str = REASON):  # type: ignore[no-untyped-def]
    return client.post(reverse("break_glass"), {"mrn": patient.mrn.lower(), "reason": reason})


def test_a_reason_is_required(client: Client, lab_tech: User, handoff: Handoff) -> None:
    client.force_login(lab_tech)
    assert client.get(reverse("break_glass")).status_code == 200
    for reason in ("", "   ", "emergency"):
        response = ask(client, handoff.patient, reason)
        assert response.status_code == 422
        assert "reason" in response.context["form"].errors
    response = client.post(reverse("break_glass"), {"mrn": "M999999", "reason": REASON})
    assert response.context["form"].errors["mrn"] == ["No patient has this MRN."]
    assert not BreakGlass.objects.exists()


@override_settings(BREAK_GLASS_MINUTES=45)
def test_access_is_granted_for_the_configured_time_and_every_view_is_flagged(
    client: Client, lab_tech: User, handoff: Handoff
) -> None:
    client.force_login(lab_tech)
    before = timezone.now()
    response = ask(client, handoff.patient)
    grant = BreakGlass.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("break_glass_record", args=[grant.uuid])
    assert (grant.user, grant.patient, grant.reason) == (lab_tech, handoff.patient, REASON)
    assert before + dt.timedelta(minutes=45) <= grant.until <= timezone.now() + dt.timedelta(minutes=45)

    page = client.get(response["Location"])
    assert page.status_code == 200
    content = page.content.decode()
    assert "MARTÍNEZ, Rosa" in content and "Penicillin" in content and "Break-glass access" in content
    client.get(response["Location"])
    flagged = list(BreakGlassAccess.objects.filter(grant=grant).select_related("log"))
    assert len(flagged) == 2
    for access in flagged:
        assert (access.log.user, access.log.what, access.log.object_ref) == (
            lab_tech,
            "break-glass record",
            str(grant.uuid),
        )
        assert list(access.log.patients.all()) == [handoff.patient]


def test_access_ends_at_its_time(client: Client, clinician: User, handoff: Handoff) -> None:
    client.force_login(clinician)
    ask(client, handoff.patient)
    grant = BreakGlass.objects.get()
    with override_settings(BREAK_GLASS_MINUTES=60):
        later = grant.until + dt.timedelta(seconds=1)
        from unittest import mock

        with mock.patch("django.utils.timezone.now", return_value=later):
            response = client.get(reverse("break_glass_record", args=[grant.uuid]))
    assert response.status_code == 403
    refused = AccessLog.objects.filter(user=clinician, outcome="denied").latest("id")
    assert list(refused.patients.all()) == [handoff.patient]
    assert not BreakGlassAccess.objects.exists()


def test_a_grant_is_its_owners_only(client: Client, clinician: User, lab_tech: User, handoff: Handoff) -> None:
    grant = break_glass.grant(user=clinician, patient=handoff.patient, reason=REASON)
    client.force_login(lab_tech)
    assert client.get(reverse("break_glass_record", args=[grant.uuid])).status_code == 404


@pytest.mark.parametrize("role", ["admin_user", "auditor", "outsider"])
def test_who_may_not_break_the_glass(
    client: Client, request: pytest.FixtureRequest, role: str, handoff: Handoff
) -> None:
    client.force_login(request.getfixturevalue(role))
    assert ask(client, handoff.patient).status_code == 403
    assert not BreakGlass.objects.exists()


def test_grants_and_their_flags_are_append_only(lab_tech: User, handoff: Handoff) -> None:
    grant = break_glass.grant(user=lab_tech, patient=handoff.patient, reason=REASON)
    with pytest.raises(DatabaseError, match="Cannot update or delete rows"), transaction.atomic():
        BreakGlass.objects.filter(pk=grant.pk).update(until=grant.until + dt.timedelta(days=1))
    with pytest.raises(DatabaseError, match="Cannot update or delete rows"), transaction.atomic():
        BreakGlass.objects.filter(pk=grant.pk).delete()


# --- the report -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["supervisor", "auditor"])
def test_supervisors_and_auditors_see_every_break_glass(
    client: Client, request: pytest.FixtureRequest, reader: str, lab_tech: User, handoff: Handoff
) -> None:
    client.force_login(lab_tech)
    ask(client, handoff.patient)
    grant = BreakGlass.objects.get()
    client.get(reverse("break_glass_record", args=[grant.uuid]))
    user = request.getfixturevalue(reader)
    client.force_login(user)
    response = client.get(reverse("audit_break_glass"))
    assert response.status_code == 200
    [shown] = response.context["grants"]
    assert shown == grant
    content = response.content.decode()
    for text in (
        REASON.replace("'", "&#x27;"),
        "MARTÍNEZ, Rosa",
        handoff.patient.mrn,
        lab_tech.username,
        "break-glass record",
    ):
        assert text in content
    entry = AccessLog.objects.filter(user=user, what="break-glass report").get()
    assert list(entry.patients.all()) == [handoff.patient]


@pytest.mark.parametrize("role", ["admin_user", "lab_tech", "clinician", "medical_assistant"])
def test_others_do_not_see_the_report(client: Client, request: pytest.FixtureRequest, role: str) -> None:
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("audit_break_glass")).status_code == 403


def test_the_report_queries_do_not_grow_with_grants(
    client: Client, auditor: User, lab_tech: User, clinician: User
) -> None:
    client.force_login(auditor)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("audit_break_glass")).status_code == 200
        return len(ctx.captured_queries)

    def more(count: int) -> None:
        for n in range(count):
            handoff = HandoffFactory(patient=PatientFactory())
            grant = break_glass.grant(user=lab_tech if n % 2 else clinician, patient=handoff.patient, reason=REASON)
            for _ in range(2):
                entry = AccessLog.objects.create(
                    user=grant.user, username=grant.username, action="view", what="break-glass record"
                )
                BreakGlassAccess.objects.create(grant=grant, log=entry, at=entry.at)

    more(1)
    few = queries()
    more(6)
    assert queries() == few


def test_the_access_log_search_marks_rows_written_under_break_glass(
    client: Client, lab_tech: User, auditor: User, handoff: Handoff
) -> None:
    client.force_login(lab_tech)
    ask(client, handoff.patient)
    client.get(reverse("break_glass_record", args=[BreakGlass.objects.get().uuid]))
    client.force_login(auditor)
    response = client.post(reverse("audit"), {"username": lab_tech.username})
    rows = response.context["rows"]
    flagged = [row.what for row in rows if hasattr(row, "break_glass")]
    assert flagged == ["break-glass record"]
    assert response.content.decode().count(">break-glass</span>") == 1
