"""Nothing typed is lost (issue 14, point 7): the documentation is kept as a draft as the performer types.

A medication recorded (which moves the documentation's version on), a reload or a sign-out brings
the draft back; each checklist step keeps the time it was ticked, not the time of the save.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.models import AccessLog, User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from procedures import services
from procedures.models import DocumentationDraft, ProcedureOrder, StepCompletion
from procedures.selectors import procedure_actions
from tests.procedures.helpers import (
    full_documentation,
    good_lot,
    new_ma,
    new_supervisor,
    ready_handoff,
    start,
    version,
)
from tests.procedures.test_actions import ROLES, STATES, build, current_version, fresh, user_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return new_ma(username="trainee", first_name="Jordan", last_name="Lee")


def _laceration(ma: User) -> ProcedureOrder:
    """A laceration repair being performed: checklist, consent, time-out, site, findings and lidocaine."""
    _, orders = ready_handoff("12001", ma=ma)
    return start(orders["12001"], ma, cosign=True)


def _steps(order: ProcedureOrder) -> list[int]:
    return list(order.procedure_type.steps.order_by("position").values_list("pk", flat=True))


def _draft(order: ProcedureOrder, by: User, *, steps: list[int], **values: object) -> DocumentationDraft:
    return services.documentation_draft_save(
        order=order, by=by, version=version(order), values={"steps": [str(s) for s in steps], **values}, steps=steps
    )


def _lidocaine():  # type: ignore[no-untyped-def]
    return good_lot(drug="Lidocaine 1%", dose=Decimal("3"), unit="mL", route="LOCAL")


# --- The service -------------------------------------------------------------------------------------


def test_each_step_is_stamped_when_first_ticked_and_the_save_files_that_time(ma: User) -> None:
    order = _laceration(ma)
    first, second, third, *_ = _steps(order)

    draft = _draft(order, ma, steps=[first, second])
    stamped = draft.ticked_at()
    assert set(stamped) == {first, second}

    # Ticked earlier than the next keystroke: a later draft keeps the first time, unticking drops it.
    DocumentationDraft.objects.filter(pk=draft.pk).update(
        steps_ticked={
            str(first): (timezone.now() - dt.timedelta(minutes=7)).isoformat(),
            str(second): stamped[second].isoformat(),
        }
    )
    draft = _draft(order, ma, steps=[first, third], findings="2 cm laceration, clean edges")
    ticked = draft.ticked_at()
    assert set(ticked) == {first, third}
    seven_minutes_ago = ticked[first]
    assert timezone.now() - seven_minutes_ago > dt.timedelta(minutes=6)
    assert ticked[third] > seven_minutes_ago

    services.procedure_document(
        order=order, by=ma, version=version(order), data=full_documentation(order, steps_done=frozenset([first, third]))
    )
    done = dict(StepCompletion.objects.filter(documentation__order=order).values_list("step_id", "done_at"))
    assert done == {first: seven_minutes_ago, third: ticked[third]}
    assert not DocumentationDraft.objects.exists()  # filed: the draft is gone


def test_a_step_saved_earlier_keeps_its_saved_time_in_later_drafts(ma: User) -> None:
    order = _laceration(ma)
    first, second, *_ = _steps(order)
    services.procedure_document(
        order=order, by=ma, version=version(order), data=full_documentation(order, steps_done=frozenset([first]))
    )
    saved = StepCompletion.objects.get(step_id=first).done_at
    assert _draft(order, ma, steps=[first, second]).ticked_at()[first] == saved


def test_a_medication_recorded_keeps_the_draft_current_and_a_save_files_it(ma: User) -> None:
    order = _laceration(ma)
    draft = _draft(order, ma, steps=_steps(order)[:2], findings="Clean edges")
    assert draft.base_version == 1

    services.procedure_add_medication(order=order, by=ma, version=1, medication=_lidocaine())
    assert version(order) == 2
    draft.refresh_from_db()
    assert draft.base_version == 2  # carried along: the medication touched nothing the draft holds

    given = services.procedure_add_medication(order=order, by=ma, version=2, medication=_lidocaine())
    services.medication_mark_error(administration=given, by=ma, reason="Recorded twice")
    draft.refresh_from_db()
    assert (draft.base_version, version(order)) == (4, 4)


def test_a_draft_of_a_version_no_longer_current_is_refused_and_nothing_is_kept(ma: User) -> None:
    order = _laceration(ma)
    services.procedure_document(order=order, by=ma, version=1, data=full_documentation(order))
    with pytest.raises(services.StaleDocumentation):
        services.documentation_draft_save(order=order, by=ma, version=1, values={"findings": "old tab"}, steps=[])
    assert not DocumentationDraft.objects.exists()


def test_finishing_or_recording_not_done_discards_the_draft(ma: User) -> None:
    order = _laceration(ma)
    services.procedure_add_medication(order=order, by=ma, version=1, medication=_lidocaine())
    services.procedure_document(order=order, by=ma, version=2, data=full_documentation(order))
    _draft(order, ma, steps=[], findings="typed after the save")
    services.procedure_finish(order=order, by=ma, version=3)
    assert not DocumentationDraft.objects.exists()

    other = _laceration(ma)
    _draft(other, ma, steps=[], findings="Patient left")
    services.procedure_not_done(order=other, by=ma, reason="patient_declined")
    assert not DocumentationDraft.objects.exists()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_a_draft_is_kept_exactly_where_documenting_is_offered(state: str, role: str) -> None:
    ma, supervisor = new_ma(), new_supervisor()
    order = build(state, ma, supervisor)
    user = user_for(role, ma=ma, supervisor=supervisor)
    offered = bool(procedure_actions(fresh(order), user).document)
    try:
        services.documentation_draft_save(
            order=fresh(order), by=user, version=current_version(order), values={}, steps=[]
        )
    except (TransitionNotAllowed, PermissionRefused):
        kept = False
    else:
        kept = True
    assert kept == offered
    assert DocumentationDraft.objects.exists() == offered


# --- The page --------------------------------------------------------------------------------------------


def _url(order: ProcedureOrder, name: str = "detail") -> str:
    return reverse(f"procedures:{name}", args=[order.uuid])


def test_the_draft_endpoint_keeps_the_form_as_typed_and_answers_with_the_tick_times(client: Client, ma: User) -> None:
    order = _laceration(ma)
    first, second, *_ = _steps(order)
    client.force_login(ma)
    response = client.post(
        _url(order, "draft"),
        {
            "version": "1",
            "steps": [str(first), "999999", "x"],
            "findings": "2 cm laceration",
            "before_pulse": "7",  # half typed: kept as typed, not validated
            "consent_obtained": "on",
            "not_a_field": "dropped",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Draft kept at" in content
    assert f'id="tick-{first}"' in content and f'id="tick-{second}"' in content  # every step's time, out of band
    draft = DocumentationDraft.objects.get()
    assert draft.values["findings"] == "2 cm laceration"
    assert draft.values["consent_obtained"] is True
    assert draft.values["steps"] == [str(first), "999999"]  # digits only; the service keeps real steps only
    assert "not_a_field" not in draft.values and "version" not in draft.values
    assert set(draft.ticked_at()) == {first}
    assert draft.saved_by == ma


def test_the_page_brings_the_draft_back_after_a_medication_is_recorded(client: Client, ma: User) -> None:
    order = _laceration(ma)
    first, second, *_ = _steps(order)
    client.force_login(ma)
    client.post(
        _url(order, "draft"),
        {"version": "1", "steps": [str(first), str(second)], "findings": "Clean edges, no foreign body"},
    )
    response = client.post(
        _url(order, "medication"),
        {
            "med-version": "1",
            "med-product": _lidocaine().product.pk,
            "med-dose": "3",
            "med-unit": "mL",
            "med-route": "LOCAL",
            "med-lot_number": "LD9",
            "med-expiry_date": (timezone.localdate() + dt.timedelta(days=90)).isoformat(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    page = client.get(_url(order))
    content = page.content.decode()
    form = page.context["doc_form"]
    assert form["findings"].value() == "Clean edges, no foreign body"
    assert sorted(map(int, form["steps"].value())) == [first, second]
    assert form["version"].value() == 2  # the save goes on the version the medication made
    assert "Your unsaved typing from" in content
    assert f'id="tick-{first}" class="tick-at small text-body-secondary">ticked' in content
    assert AccessLog.objects.filter(what="procedure").exists()

    # Signed out (the idle timeout) and back in: still there.
    client.logout()
    client.force_login(ma)
    assert client.get(_url(order)).context["doc_form"]["findings"].value() == "Clean edges, no foreign body"

    # Saving files it: the draft is gone, the record holds it.
    data = {"version": "2", "steps": [str(first), str(second)], "findings": "Clean edges, no foreign body", "save": "1"}
    assert client.post(_url(order, "document"), data).status_code == 302
    assert not DocumentationDraft.objects.exists()
    assert "Your unsaved typing" not in client.get(_url(order)).content.decode()


def test_a_stale_or_refused_draft_says_why_and_keeps_nothing(client: Client, ma: User) -> None:
    order = _laceration(ma)
    client.force_login(ma)
    services.procedure_document(order=order, by=ma, version=1, data=full_documentation(order))
    response = client.post(_url(order, "draft"), {"version": "1", "findings": "from an old tab"})
    assert response.status_code == 409
    assert "What you type is not being kept" in response.content.decode()
    response = client.post(_url(order, "draft"), {"version": "", "findings": "no version"})
    assert response.status_code == 409
    assert "reload it" in response.content.decode()

    other = new_ma()
    client.force_login(other)
    response = client.post(_url(order, "draft"), {"version": "2", "findings": "not mine"})
    assert response.status_code in (403, 404, 409)
    assert not DocumentationDraft.objects.exists()
    denied = AccessLog.objects.filter(action="denied").latest("pk")
    assert list(denied.patients.all()) == [order.handoff.patient]
