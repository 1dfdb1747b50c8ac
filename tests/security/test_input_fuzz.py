"""Hostile input: every form answers True/False with readable messages; views never 500 or write."""

import re
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice import icd10
from backoffice.models import Handoff, HandoffEvent, User, validate_npi
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
        for field, errors in form.errors.as_data().items():
            for error in errors:
                assert_echoes_input_only_as_a_parameter(error, field)


def assert_echoes_input_only_as_a_parameter(error: ValidationError, field: str = "") -> None:
    """A message is a fixed text; what was typed reaches it only as a parameter (``%(value)s``).

    So the text holds no str.format placeholder (``{value}``: never formatted, or input pasted in
    with an f-string) and every ``%(name)s`` it holds has its parameter. What is shown may echo the
    input, ``{{`` or ``%(x)s`` included: the parameters are inserted once, never read as a format.
    """
    [shown] = list(error)
    assert isinstance(shown, str) and shown.strip(), (field, shown)
    template = str(error.message)
    assert "{" not in template and "}" not in template, (field, template)
    named = set(re.findall(r"%\((\w+)\)", template))
    assert named <= set(error.params or {}), (field, template, error.params)


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


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("{{ settings.SECRET_KEY }}", ["{{", "settings.SECRET_KEY", "}}"]),
        ("%(value)s {0} {}", ["%(value)s", "{0}", "{}"]),
        ("E11{x}", ["E11{x}"]),
        ("%s", ["%s"]),
    ],
)
def test_an_icd10_error_shows_braces_and_percents_as_typed(clinician: User, typed: str, shown: list[str]) -> None:
    # Hypothesis found it: the codes' messages were f-strings, so what was typed became the message's
    # text ("{{ is not an ICD-10-CM code."), a format for anything applying parameters to it.
    form = bo_forms.HandoffForm({"diagnoses": typed}, user=clinician)
    assert not form.is_valid()
    errors = form.errors.as_data()["diagnoses"]
    for error in errors:
        assert_echoes_input_only_as_a_parameter(error, "diagnoses")
    assert form.errors["diagnoses"] == [f"{code} is not an ICD-10-CM code." for code in shown]


def test_an_icd10_category_names_its_first_billable_code_as_a_parameter() -> None:
    with pytest.raises(ValidationError) as caught:
        icd10.check("e11")
    [error] = caught.value.error_list
    assert_echoes_input_only_as_a_parameter(error)
    assert caught.value.messages == [
        "E11 is a category, not a billable code: give the full code, e.g. E11.00 "
        "(Type 2 diabetes mellitus with hyperosmolarity without nonketotic hyperglycemic-hyperosmolar coma (NKHHC))."
    ]


@pytest.mark.parametrize("typed", ["{0}", "%(value)s", "12345{}789"])
def test_an_npi_error_shows_what_was_typed_as_a_parameter(typed: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_npi(typed)
    [error] = caught.value.error_list
    assert_echoes_input_only_as_a_parameter(error)
    assert caught.value.messages == [f"{typed} is not a valid NPI: ten digits, the last one a check digit."]


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
