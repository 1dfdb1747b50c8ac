import pytest
from django.urls import reverse
from backoffice import services
from lab.models import TestDefinition
from procedures.models import ProcedureType

@pytest.mark.django_db
def test_pages(client, medical_assistant, supervisor, clinician, handoff, station):
    from procedures.services import procedure_orders_add
    procedure_orders_add(handoff=handoff, procedure_types=list(ProcedureType.objects.all()[:2]), by=clinician)
    client.force_login(medical_assistant)
    r = client.get(reverse("queue")); assert r.status_code == 200, r.content[:2000]
    r = client.get(reverse("queue"), headers={"HX-Request": "true"}); assert r.status_code == 200
    r = client.get(reverse("handoff_detail", args=[handoff.uuid])); assert r.status_code == 200
    r = client.post(reverse("handoff_claim", args=[handoff.uuid])); assert r.status_code == 302
    r = client.get(reverse("handoff_detail", args=[handoff.uuid])); assert r.status_code == 200
    r = client.get(reverse("handoff_new")); assert r.status_code == 200
    r = client.post(reverse("patient_search"), {"q": "mart"}); assert b"MART" in r.content, r.content
    client.force_login(supervisor)
    r = client.get(reverse("board")); assert r.status_code == 200, r.content[:3000]
    client.force_login(clinician)
    tests = TestDefinition.objects.all()[:2]
    r = client.post(reverse("handoff_new"), {"patient": str(handoff.patient.uuid), "ordering_clinician": clinician.pk, "exam_room": handoff.exam_room.pk, "priority": 1, "tests": [t.pk for t in tests], "mobility": "independent", "isolation": "none"})
    assert r.status_code == 302, r.content.decode()[:5000]
