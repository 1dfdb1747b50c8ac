"""Hostile input: every form answers True/False with readable messages; views never 500 or write."""

from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.models import Handoff, HandoffEvent, User
from backoffice.pages import forms as bo_forms
from procedures import forms as proc_forms
from procedures.models import ProcedureDocumentation, ProcedureType
from procedures.services import procedure_orders_add

pytestmark = pytest.mark.django_db

HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "{{ settings.SECRET_KEY }}",
        "%(value)s {0} {}",
        "' OR 1=1 --",
        '=HYPERLINK("http://evil")',
        "x" * 10_000,
        "9" * 400,
        "-1",
        "1e309",
        "NaN",
        "2024-02-30",
        "🦄" * 50,
        "\u202e\u0000\ufeff",
        "../../etc/passwd",
    ]
)
TEXT = st.one_of(HOSTILE, st.text(max_size=300))
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _payload(form: forms.Form, data: st.DataObject) -> dict[str, Any]:
    names = [form.add_prefix(name) for name in form.fields] + ["unexpected", "csrfmiddlewaretoken"]
    return data.draw(st.dictionaries(st.sampled_from(names), st.one_of(TEXT, st.lists(TEXT, max_size=3))))


def _check(form_class: type[forms.Form], payload: dict[str, Any], **kwargs: Any) -> None:
    from django.utils.datastructures import MultiValueDict

    data = MultiValueDict({k: v if isinstance(v, list) else [v] for k, v in payload.items()})
    form = form_class(data, **kwargs)
    valid = form.is_valid()
    assert valid in (True, False)
    if not valid:
        for field, messages in form.errors.items():
            for message in messages:
                assert isinstance(message, str) and message.strip(), (field, message)
                # Choice errors echo the submitted value; what is left must hold no unformatted placeholder.
                template = message
                for value in sorted((v for vs in data.lists() for v in vs[1]), key=len, reverse=True):
                    if value:
                        template = template.replace(value, "")
                assert "{" not in template and "%(" not in template, (field, message)


PLAIN_FORMS: list[type[forms.Form]] = [
    bo_forms.VerifyIdentityForm,
    bo_forms.StationForm,
    bo_forms.CancelForm,
    bo_forms.PatientSearchForm,
    proc_forms.MedicationForm,
    proc_forms.NotDoneForm,
    proc_forms.ReturnForm,
    proc_forms.CosignForm,
    proc_forms.ResubmitForm,
    proc_forms.AddendumForm,
    proc_forms.SignOffForm,
    proc_forms.ChargeDayForm,
]


@pytest.mark.parametrize("form_class", PLAIN_FORMS, ids=lambda c: c.__name__)
@FUZZ
@given(data=st.data())
def test_plain_forms_never_raise(form_class: type[forms.Form], data: st.DataObject) -> None:
    _check(form_class, _payload(form_class(), data))


@FUZZ
@given(data=st.data())
def test_the_handoff_form_never_raises(clinician: User, data: st.DataObject) -> None:
    _check(bo_forms.HandoffForm, _payload(bo_forms.HandoffForm(user=clinician), data), user=clinician)


@pytest.fixture
def order(handoff: Handoff):  # type: ignore[no-untyped-def]
    # The type that documents the most (site, findings, vitals…) exercises the most dynamic fields.
    ptypes = ProcedureType.objects.filter(is_active=True)
    ptype = max(ptypes, key=lambda p: (bool(p.vitals), p.documents_site, p.documents_findings, p.consent_required))
    return procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=handoff.ordering_clinician)[0]


@FUZZ
@given(data=st.data())
def test_the_procedure_forms_never_raise(order, medical_assistant: User, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    start_kwargs = {"order": order, "performer": medical_assistant, "needs_supervision": True}
    _check(proc_forms.StartForm, _payload(proc_forms.StartForm(**start_kwargs), data), **start_kwargs)
    doc, _ = ProcedureDocumentation.objects.get_or_create(order=order, defaults={"updated_by": medical_assistant})
    doc_kwargs = {"order": order, "documentation": doc}
    _check(proc_forms.DocumentationForm, _payload(proc_forms.DocumentationForm(**doc_kwargs), data), **doc_kwargs)


HANDOFF_FIELDS = [
    "patient",
    "ordering_clinician",
    "exam_room",
    "priority",
    "procedures",
    "tests",
    "clinical_note",
    "interpreter_needed",
    "interpreter_language",
    "companion",
    "aide_needed",
    "mobility",
    "isolation",
]


@FUZZ
@given(payload=st.dictionaries(st.sampled_from(HANDOFF_FIELDS), TEXT))
def test_new_handoff_view_survives_hostile_posts(client: Client, clinician: User, payload: dict[str, str]) -> None:
    client.force_login(clinician)
    handoffs, events = Handoff.objects.count(), HandoffEvent.objects.count()
    response = client.post(reverse("handoff_new"), payload)
    assert response.status_code in (200, 302, 422)
    # A hostile patient reference never names a real patient, so nothing may be written.
    assert Handoff.objects.count() == handoffs
    assert HandoffEvent.objects.count() == events


@FUZZ
@given(payload=st.dictionaries(st.sampled_from(["scanned_mrn", "full_name", "date_of_birth"]), TEXT))
def test_verify_identity_view_survives_hostile_posts(
    client: Client, medical_assistant: User, handoff: Handoff, payload: dict[str, str]
) -> None:
    from backoffice import services
    from tests.factories import StationFactory

    if handoff.claimed_by_id is None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        services.handoff_assign_station(handoff=handoff, station=StationFactory(), by=medical_assistant)
    client.force_login(medical_assistant)
    response = client.post(reverse("handoff_verify", args=[handoff.uuid]), payload)
    assert response.status_code in (200, 302, 422)
    fresh = Handoff.objects.get(pk=handoff.pk)
    if payload.get("scanned_mrn", "").strip() != handoff.patient.mrn:
        assert fresh.identity_verified_at is None
