"""The FHIR read API (/fhir/): authorization, reads, searches, paging, errors, the access log, metadata."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from backoffice import roles
from backoffice.fhir.models import ApiClient, StoredSearch
from backoffice.fhir.search import TYPES
from backoffice.models import AccessLog, Patient, User
from lab.models import TestOrder
from lab.services import test_orders_add
from procedures.models import ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from tests.backoffice.fhir_helpers import api_client, bearer, get, post_search
from tests.factories import HandoffFactory, PatientFactory, UserFactory
from tests.specimens.helpers import tests

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(supervisor: User) -> str:
    return api_client(supervisor)[1]


def _outcome(response: Any, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    issue = OperationOutcome.model_validate(response.json()).issue[0]
    return str(issue.diagnostics)


def _orders(n: int) -> list[Patient]:
    """n handoffs, each with a procedure and a lab test ordered, for n patients."""
    ptype = ProcedureType.objects.filter(is_active=True).order_by("code").first()
    assert ptype is not None
    patients = []
    for _ in range(n):
        handoff = HandoffFactory()
        procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=handoff.ordering_clinician)
        test_orders_add(handoff=handoff, tests=tests("CBC"), by=handoff.ordering_clinician)
        patients.append(handoff.patient)
    return patients


# --- Authorization -------------------------------------------------------------------------------


def test_it_refuses_a_request_without_a_token(patient: Patient) -> None:
    response = Client().get(f"/fhir/Patient/{patient.uuid}")
    assert "bearer token" in _outcome(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="fhir"'


def test_it_refuses_a_signed_in_staff_member_without_a_token(
    client: Client, supervisor: User, patient: Patient
) -> None:
    client.force_login(supervisor)
    _outcome(client.get(f"/fhir/Patient/{patient.uuid}"), 401)
    _outcome(client.get("/fhir/metadata"), 401)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
        ({"revoked": True}, "revoked"),
    ],
)
def test_it_refuses_an_expired_or_revoked_token(
    supervisor: User, patient: Patient, fields: dict[str, Any], message: str
) -> None:
    _, token = api_client(supervisor, **fields)
    response = get(token, f"/fhir/Patient/{patient.uuid}")
    assert message in _outcome(response, 401)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_it_refuses_a_wrong_or_forged_token(supervisor: User, patient: Patient) -> None:
    client, token = api_client(supervisor)
    prefix_only = f"cbo_{client.token_prefix}_not-the-secret"
    for bad in (prefix_only, token + "x", "cbo_nosuch_secret"):
        _outcome(get(bad, f"/fhir/Patient/{patient.uuid}"), 401)
    _outcome(Client().get(f"/fhir/Patient/{patient.uuid}", HTTP_AUTHORIZATION=f"Basic {token}"), 401)


def test_only_a_hash_of_the_token_is_stored(supervisor: User) -> None:
    client, token = api_client(supervisor)
    client.refresh_from_db()
    assert token not in (client.token_hash, client.token_prefix) and len(client.token_hash) == 64
    assert token.startswith(f"cbo_{client.token_prefix}_")


def test_a_reissued_token_replaces_the_old_one(supervisor: User, patient: Patient) -> None:
    from backoffice.fhir.auth import client_token_issue

    client, old = api_client(supervisor)
    new = client_token_issue(client=client)
    _outcome(get(old, f"/fhir/Patient/{patient.uuid}"), 401)
    assert get(new, f"/fhir/Patient/{patient.uuid}").status_code == 200


def test_a_type_outside_the_client_s_scopes_is_forbidden(supervisor: User, patient: Patient) -> None:
    _, token = api_client(supervisor, scopes=["Observation.read"])
    assert "Patient.read" in _outcome(get(token, f"/fhir/Patient/{patient.uuid}"), 403)
    _outcome(post_search(token, "Patient", name="Anyone"), 403)
    assert get(token, "/fhir/Observation").status_code == 200


def test_it_records_when_a_client_was_last_used(supervisor: User, token: str) -> None:
    assert get(token, "/fhir/metadata").status_code == 200
    assert ApiClient.objects.get().last_used_at is not None


# --- Reads ---------------------------------------------------------------------------------------


def test_a_read_answers_the_resource_as_fhir_json_and_logs_the_patient(
    supervisor: User, token: str, patient: Patient
) -> None:
    response = get(token, f"/fhir/Patient/{patient.uuid}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert response["Cache-Control"] == "no-store, private"
    body = response.json()
    assert body["resourceType"] == "Patient" and body["id"] == str(patient.uuid)
    assert body["identifier"][0]["value"] == patient.mrn
    entry = AccessLog.objects.get()
    assert entry.user == supervisor and entry.action == "view" and entry.object_ref == str(patient.uuid)
    assert entry.what == "FHIR Patient read via API client Clinic EHR"
    assert list(entry.patients.all()) == [patient]


def test_an_unknown_id_or_type_is_a_not_found_outcome(token: str) -> None:
    _outcome(get(token, "/fhir/Patient/00000000-0000-0000-0000-000000000000"), 404)
    _outcome(get(token, "/fhir/Patient/1"), 404)  # a primary key is no id here
    assert "Unknown resource type" in _outcome(get(token, "/fhir/Medication/1"), 404)
    assert AccessLog.objects.filter(outcome="not_found").count() == 2


def test_it_is_read_only(token: str, patient: Patient) -> None:
    response = Client().post(f"/fhir/Patient/{patient.uuid}", {}, **bearer(token))
    _outcome(response, 405)
    assert response["Allow"] == "GET"
    _outcome(Client().post("/fhir/Patient", {}, **bearer(token)), 405)
    _outcome(Client().get("/fhir/Patient/_search", **bearer(token)), 405)
    _outcome(Client().delete(f"/fhir/Patient/{patient.uuid}", **bearer(token)), 405)


def test_posting_needs_no_csrf_token(token: str, patient: Patient) -> None:
    response = post_search(token, "Patient", client=Client(enforce_csrf_checks=True), identifier=patient.mrn)
    assert response.status_code == 200 and response.json()["total"] == 1


def test_a_post_search_takes_form_encoded_parameters_only(token: str, patient: Patient) -> None:
    response = Client().post("/fhir/Patient/_search", {"identifier": patient.mrn}, **bearer(token))  # multipart
    assert "form-encoded" in _outcome(response, 400)


# --- Searches ------------------------------------------------------------------------------------


def test_a_get_search_that_names_a_patient_is_refused(token: str, patient: Patient) -> None:
    for params in (
        {"identifier": patient.mrn},
        {"name": patient.family_name},
        {"birthdate": "1980-01-01"},
        {"name:exact": "X"},
    ):
        assert "POST" in _outcome(get(token, "/fhir/Patient", **params), 400)
    assert not StoredSearch.objects.exists()
    assert not AccessLog.objects.exists()


def test_a_post_search_finds_a_patient_by_mrn_name_or_birthdate(token: str) -> None:
    wanted = PatientFactory(family_name="Okonkwo", given_name="Ada", date_of_birth="1971-03-09")
    PatientFactory(family_name="Other", given_name="Person", date_of_birth="1990-01-01")
    for params in (
        {"identifier": wanted.mrn},
        {"identifier": f"urn:clinic-backoffice:mrn|{wanted.mrn}"},
        {"name": "okon"},
        {"birthdate": "1971-03-09"},
        {"birthdate": "le1980-01-01"},
    ):
        bundle = post_search(token, "Patient", **params).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [str(wanted.uuid)], params
    assert post_search(token, "Patient", identifier="http://other.example|" + wanted.mrn).json()["total"] == 0


def test_a_post_search_s_links_carry_no_phi(token: str) -> None:
    patients = [PatientFactory(family_name="Samename") for _ in range(3)]
    bundle = post_search(token, "Patient", name="Samename", _count=2).json()
    assert bundle["total"] == 3
    urls = [link["url"] for link in bundle["link"]]
    assert all("Samename" not in url and "name" not in urlsplit(url).query for url in urls)
    for patient in patients:
        assert all(patient.mrn not in url for url in urls)


def test_search_pages_through_the_matches_with_bundle_links(token: str) -> None:
    patients = _orders(5)
    first = get(token, "/fhir/ServiceRequest", _count=4).json()
    Bundle.model_validate(first)
    assert first["total"] == 10 and len(first["entry"]) == 4
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert set(relations) == {"self", "next"}
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = relations["next"]
    while url:
        page = get(token, url).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        relations = {link["relation"]: link["url"] for link in page["link"]}
        assert "previous" in relations
        url = relations.get("next")
    assert len(seen) == len(set(seen)) == 10
    # The patient's id narrows it to their two orders.
    one = get(token, "/fhir/ServiceRequest", patient=f"Patient/{patients[0].uuid}").json()
    assert one["total"] == 2
    assert {e["resource"]["code"]["coding"][0]["system"] for e in one["entry"]} == {
        "http://loinc.org",
        "http://www.ama-assn.org/go/cpt",
    }


def test_a_page_link_is_only_its_client_s(supervisor: User, token: str) -> None:
    PatientFactory.create_batch(3)
    next_url = next(
        link["url"] for link in get(token, "/fhir/Patient", _count=1).json()["link"] if link["relation"] == "next"
    )
    _, other = api_client(UserFactory(role=roles.ROLE_SUPERVISOR), name="Another system")
    _outcome(get(other, next_url), 404)
    StoredSearch.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in _outcome(get(token, next_url), 404)


def test_search_filters_by_status_code_and_dates(token: str) -> None:
    _orders(2)
    assert get(token, "/fhir/ServiceRequest", status="active").json()["total"] == 4
    assert get(token, "/fhir/ServiceRequest", status="completed,revoked").json()["total"] == 0
    cbc = TestOrder.objects.first()
    assert cbc is not None
    assert get(token, "/fhir/ServiceRequest", code=f"http://loinc.org|{cbc.test.loinc_code}").json()["total"] == 2
    today = timezone.localdate().isoformat()
    assert get(token, "/fhir/ServiceRequest", authored=f"ge{today}").json()["total"] == 4
    assert get(token, "/fhir/ServiceRequest", authored=f"lt{today}").json()["total"] == 0
    assert get(token, "/fhir/Task", status="requested").json()["total"] == 4


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"authored": "yesterday"},
        {"colour": "blue"},
        {"_count": "0"},
        {"_count": "1000"},
        {"patient": "M123456"},
        {"_offset": "-1"},
    ],
)
def test_bad_search_parameters_are_a_bad_request_outcome(token: str, params: dict[str, str]) -> None:
    _outcome(get(token, "/fhir/ServiceRequest", **params), 400)


def test_a_search_logs_every_patient_it_returns(supervisor: User, token: str) -> None:
    patients = _orders(3)
    bundle = get(token, "/fhir/Task", _count=100).json()
    assert bundle["total"] == 6
    entry = AccessLog.objects.get()
    assert entry.user == supervisor and entry.action == "search" and entry.username == supervisor.username
    assert entry.what == "FHIR Task search via API client Clinic EHR"
    assert set(entry.patients.all()) == set(patients)


def test_a_search_that_finds_nothing_logs_no_patient(token: str) -> None:
    assert get(token, "/fhir/Observation").json()["total"] == 0
    assert AccessLog.objects.get().patients.count() == 0


@pytest.mark.parametrize("resource_type", ["ServiceRequest", "Task", "Patient"])
def test_a_search_s_queries_do_not_grow_with_the_page_size(token: str, resource_type: str) -> None:
    _orders(12)

    def queries(count: int) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            response = get(token, f"/fhir/{resource_type}", _count=count)
        assert response.status_code == 200 and len(response.json()["entry"]) == count
        return [q["sql"] for q in ctx.captured_queries]

    small, large = queries(2), queries(10)
    # The client and its owner; its last use; expired searches dropped; this one kept; the count;
    # the page (the union's ids, then each kind's rows with what they name); the access row.
    assert len(small) == len(large)
    expected = {"Patient": 7, "ServiceRequest": 9, "Task": 9}[resource_type]
    assert len(large) == expected, "\n".join(large)


def test_observations_and_reports_search_in_constant_queries(
    lab_tech: User, medical_assistant: User, token: str
) -> None:
    from tests.specimens.helpers import collected, received, results_released

    for _ in range(4):
        _, [specimen] = collected("Hemoglobin", ma=medical_assistant)
        results_released(received(specimen, ma=medical_assistant, lab_tech=lab_tech), lab_tech=lab_tech)

    def count_queries(resource_type: str, count: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            body = get(token, f"/fhir/{resource_type}", _count=count).json()
        assert len(body["entry"]) == count
        return len(ctx.captured_queries)

    # Observation: client, last use, expired dropped, search kept, count, page, access row.
    assert count_queries("Observation", 1) == count_queries("Observation", 3) == 7
    # DiagnosticReport: the same and the page's released results.
    assert count_queries("DiagnosticReport", 1) == count_queries("DiagnosticReport", 3) == 8


# --- Metadata ------------------------------------------------------------------------------------


def test_metadata_lists_exactly_what_works(token: str) -> None:
    response = get(token, "/fhir/metadata")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.3.0"
    assert statement.format == ["application/fhir+json"]
    [rest] = statement.rest
    listed = {r.type: r for r in rest.resource}
    assert set(listed) == set(TYPES)
    for name, resource in listed.items():
        assert [i.code for i in resource.interaction] == ["read", "search-type"]
        assert {p.name for p in resource.searchParam} == TYPES[name].param_names() | {"_count"}
        # Each listed parameter is taken by the search; an unlisted one is refused.
        for param in TYPES[name].params:
            assert all(param.name in source.filters for source in TYPES[name].sources)
        _outcome(post_search(token, name, unlisted="x"), 400)


def test_a_supervisor_present_and_one_who_co_signed_are_performers_with_function_supervisor(
    medical_assistant: User, supervisor: User, token: str
) -> None:
    from backoffice.fhir import builders
    from procedures.workflow import ProcedureStatus, Supervision

    _orders(1)
    order = ProcedureOrder.objects.get()
    order.performer, order.supervision, order.supervisor = medical_assistant, Supervision.PRESENT, supervisor
    order.cosigned_by = UserFactory(role=roles.ROLE_SUPERVISOR)
    order.status = ProcedureStatus.COMPLETED
    performers = builders.as_json(builders.procedure(order))["performer"]
    assert [(p["function"]["text"], p["actor"]["reference"]) for p in performers] == [
        ("performer", f"Practitioner/{medical_assistant.uuid}"),
        ("supervisor", f"Practitioner/{supervisor.uuid}"),
        ("supervisor", f"Practitioner/{order.cosigned_by.uuid}"),
    ]
    # The same person present and co-signing is named once.
    order.cosigned_by = supervisor
    assert len(builders.as_json(builders.procedure(order))["performer"]) == 2
    # A practitioner reads by the id the reference names.
    assert get(token, performers[1]["actor"]["reference"].replace("Practitioner/", "/fhir/Practitioner/")).json()[
        "id"
    ] == str(supervisor.uuid)


def test_admin_shows_a_new_client_s_token_once_and_keeps_only_its_hash(client: Client, patient: Patient) -> None:
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(superuser)
    response = client.post(
        "/admin/fhir/apiclient/add/",
        {
            "name": "Clinic EHR",
            "owner": superuser.pk,
            "scopes": ["Patient.read"],
            "expires_at_0": (timezone.localdate() + timedelta(days=30)).isoformat(),
            "expires_at_1": "00:00:00",
        },
    )
    assert response.status_code == 200, response.content[:500]
    token = response.context["token"]
    assert token in response.content.decode() and "no-store" in response["Cache-Control"]
    row = ApiClient.objects.get()
    assert row.scopes == ["Patient.read"] and token not in row.token_hash
    assert get(token, f"/fhir/Patient/{patient.uuid}").status_code == 200
    assert token not in client.get(f"/admin/fhir/apiclient/{row.pk}/change/").content.decode()
