"""Every resource type, built from the demo seed's rows, validates with fhir.resources' R4B models.

The demo is seeded once for the module in a transaction rolled back at its end (as test_seed_demo
does); each test reads it through the API, so what is checked is what a client gets.
"""

from collections import Counter
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from fhir.resources import get_fhir_model_class

from backoffice.fhir.search import TYPES
from backoffice.models import Patient, User
from lab.models import ReferenceLab, Result, SendOut, TestOrder
from lab.workflow import ResultStatus
from procedures.models import ProcedureOrder
from specimens.models import Specimen
from tests.backoffice.fhir_helpers import api_client, get

pytestmark = pytest.mark.django_db
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _r4b(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type, "R4B") if _takes_release() else _r4b_import(resource_type)


def _takes_release() -> bool:
    import inspect

    return "release" in inspect.signature(get_fhir_model_class).parameters


def _r4b_import(resource_type: str) -> Any:
    import importlib

    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield
        transaction.set_rollback(True)


@pytest.fixture
def token(demo: None) -> str:
    owner = User.objects.filter(is_active=True).order_by("pk").first()
    assert owner is not None
    return api_client(owner, name="Validation run")[1]


def _everything(token: str, resource_type: str, **params: str) -> list[dict[str, Any]]:
    """Every resource a search finds, following its next links."""
    body = get(token, f"/fhir/{resource_type}", _count="100", **params).json()
    assert "link" in body, body
    found = [entry["resource"] for entry in body["entry"]] if "entry" in body else []
    while next_url := next((link["url"] for link in body["link"] if link["relation"] == "next"), None):
        body = get(token, next_url).json()
        found += [entry["resource"] for entry in body["entry"]]
    assert len(found) == body["total"]
    return found


EXPECTED_ROWS = {
    "Patient": lambda: Patient.objects.count(),
    "Practitioner": lambda: User.objects.count(),
    "Organization": lambda: ReferenceLab.objects.count(),
    "ServiceRequest": lambda: ProcedureOrder.objects.count() + TestOrder.objects.count(),
    "Task": lambda: ProcedureOrder.objects.count() + TestOrder.objects.count() + SendOut.objects.count(),
    "Specimen": lambda: Specimen.objects.count(),
    "Procedure": lambda: ProcedureOrder.objects.count(),
    "Observation": lambda: Result.objects.filter(status=ResultStatus.RELEASED).count(),
    "DiagnosticReport": lambda: TestOrder.objects.count(),
}


@pytest.mark.parametrize("resource_type", sorted(TYPES))
def test_every_resource_from_the_demo_validates_as_r4b(token: str, resource_type: str) -> None:
    found = _everything(token, resource_type)
    assert found, f"the demo has no {resource_type}"
    assert len(found) == EXPECTED_ROWS[resource_type]()
    model = _r4b(resource_type)
    for resource in found:
        assert model.model_validate(resource).id == resource["id"]
    # And each one reads by its id as the search gave it.
    first = found[0]
    assert get(token, f"/fhir/{resource_type}/{first['id']}").json() == first


@pytest.mark.parametrize("resource_type", [name for name in sorted(TYPES) if "status" in TYPES[name].param_names()])
def test_a_status_search_finds_exactly_the_resources_built_with_that_status(token: str, resource_type: str) -> None:
    statuses = Counter(resource["status"] for resource in _everything(token, resource_type))
    assert len(statuses) > 1, f"the demo's {resource_type}s are all {statuses}"
    for status, count in statuses.items():
        matched = _everything(token, resource_type, status=status)
        assert {r["status"] for r in matched} == {status}
        assert len(matched) == count, status


def test_the_demo_covers_what_the_mapping_is_for(token: str) -> None:
    specimens = _everything(token, "Specimen")
    assert any("condition" in s for s in specimens if s["status"] == "unsatisfactory")  # a rejection
    observations = _everything(token, "Observation")
    assert any("valueQuantity" in o for o in observations)
    assert any("interpretation" in o for o in observations)
    assert any(o["performer"][0]["reference"] != "Organization/in-house-lab" for o in observations)  # a send-out
    requests = _everything(token, "ServiceRequest")
    assert {r["priority"] for r in requests} == {"stat", "routine"}
    assert all(r["requisition"]["system"] == "urn:clinic-backoffice:handoff" for r in requests)
    tasks = _everything(token, "Task")
    assert any("partOf" in t for t in tasks)  # a send-out's task, part of its order's
