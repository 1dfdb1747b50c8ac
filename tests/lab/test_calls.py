"""A specimen rejected after the patient left: the ordering clinician gets a call-back, and records it."""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.models import AccessLog, Handoff, User
from backoffice.services import handoff_complete
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import RecollectionCall
from lab.services import recollection_call_close
from specimens.services import specimen_reject
from tests.factories import UserFactory
from tests.specimens.helpers import collected, reason, received

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def lab_tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def rejected_after_leaving(ma: User, lab_tech: User) -> RecollectionCall:
    handoff, [tube] = collected("CBC", ma=ma)
    handoff_complete(handoff=Handoff.objects.get(pk=handoff.pk), by=ma)  # the patient has left
    received(tube, ma=ma, lab_tech=lab_tech)
    specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech, note="Clotted")
    return RecollectionCall.objects.get(specimen=tube)


def test_a_rejection_after_the_patient_left_asks_the_clinician_to_call(ma: User, lab_tech: User) -> None:
    call = rejected_after_leaving(ma, lab_tech)
    assert call.clinician == call.handoff.ordering_clinician
    assert call.status == RecollectionCall.Status.OPEN
    assert "RC Clotting" in call.reason and "Clotted" in call.reason
    assert list(call.events.values_list("action", flat=True)) == ["opened"]


def test_a_rejection_while_the_patient_is_here_needs_no_call(ma: User, lab_tech: User) -> None:
    _, [tube] = collected("CBC", ma=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech)
    assert not RecollectionCall.objects.exists()


def test_the_clinician_records_the_call_once_with_what_came_of_it(ma: User, lab_tech: User) -> None:
    call = rejected_after_leaving(ma, lab_tech)
    clinician = call.clinician
    with pytest.raises(TransitionNotAllowed, match="Say what came of the call"):
        recollection_call_close(call=call, by=clinician, outcome=" ")
    with pytest.raises(PermissionRefused):
        recollection_call_close(call=call, by=UserFactory(role=roles.ROLE_CLINICIAN), outcome="Called")
    recollection_call_close(call=call, by=clinician, outcome="Coming back Thursday at 9")
    call.refresh_from_db()
    assert (call.status, call.outcome) == (RecollectionCall.Status.DONE, "Coming back Thursday at 9")
    with pytest.raises(TransitionNotAllowed, match="is called; it can't become called"):
        recollection_call_close(call=call, by=clinician, outcome="Again")


def test_the_call_backs_page_lists_the_clinicians_own_and_logs_them(
    client: Client,
    ma: User,
    lab_tech: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    call = rejected_after_leaving(ma, lab_tech)
    rejected_after_leaving(UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech)  # another clinician's
    client.force_login(call.clinician)
    # 1 session, 2 user, 3 permissions and roles, 4 the open calls with patient, clinician and
    # specimen, 5 the unseen cancelled tests with test, patient, clinician and canceller, 6 the
    # access log row with its patients.
    with django_assert_num_queries(6):
        response = client.get(reverse("lab:calls"))
    content = response.content.decode()
    assert call.patient.family_name.upper() in content
    assert content.count('name="outcome"') == 1
    entry = AccessLog.objects.get(what="lab follow-ups")
    assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]
    response = client.post(reverse("lab:call_done", args=[call.uuid]), {"outcome": "Booked for tomorrow"}, follow=True)
    assert "was called back" in response.content.decode()
    assert RecollectionCall.objects.get(pk=call.pk).status == RecollectionCall.Status.DONE


def test_an_ma_has_no_call_backs_page(client: Client, ma: User) -> None:
    client.force_login(ma)
    assert client.get(reverse("lab:calls")).status_code == 403
