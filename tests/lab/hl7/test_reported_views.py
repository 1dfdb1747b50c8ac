"""A reference lab's results where the clinician reads them: the inbox and the patient's results page.

The corpus's orders come in as open send-outs ordered by Dr Priya Shah (intake_helpers.PROVIDER);
each page must say who performed a result, mark a preliminary one, and carry the lab's notes and
narrative report with it, in as many queries as the in-house results take.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from backoffice.models import AccessLog, User
from lab.models import SendOut
from lab.sendouts.filing import short_name
from tests.lab.hl7.intake_helpers import PROVIDER, corpus_orders, intake

pytestmark = pytest.mark.django_db

ACME_PERFORMING = "Performed at Acme Reference Laboratories (CLIA 05D0987654) · director Dr Alan J Moreau MD"


def ordering_clinician(send_out: SendOut) -> User:
    clinician = send_out.order.handoff.ordering_clinician
    assert clinician.npi == PROVIDER[0]
    return clinician


def test_the_inbox_names_the_performing_lab_and_carries_the_labs_notes(
    client: Client,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    orders = corpus_orders("ORD-2026-000042", "ORD-2026-000049")
    intake("national_251_cmp_final.hl7")
    intake("nte_comments.hl7")
    client.force_login(ordering_clinician(orders["ORD-2026-000042"]))
    # 1 session, 2 user, 3 permissions and roles, 4 the results with analyte, test, patient,
    # a correction's original and the reference lab, 5 the access row with its patients.
    with django_assert_num_queries(5):
        response = client.get(reverse("lab:inbox:inbox"))
    content = response.content.decode()
    assert response.context["results"] and all(r.inbound_id for r in response.context["results"])
    assert content.count(ACME_PERFORMING) == 15  # the CMP's 14 rows and the vitamin D say who ran them
    # A result that names no performing lab (no OBX-23, nor OBX-15) was performed by its sender.
    unnamed = response.context["results"][0]
    unnamed.performing_lab = ""
    assert unnamed.performed_by == "Acme Reference Laboratories"
    assert "Lab note: Vitamin D deficiency: &lt; 20 ng/mL.<br>    Insufficiency" in content


def test_a_preliminary_is_marked_and_its_final_supersedes_it_on_the_patients_page(client: Client) -> None:
    orders = corpus_orders("ORD-2026-000045")
    intake("batch_prelim_then_final.hl7")
    send_out = orders["ORD-2026-000045"]
    client.force_login(ordering_clinician(send_out))
    response = client.get(reverse("lab:inbox:patient", args=[send_out.order.handoff.patient.uuid]))
    content = response.content.decode()
    assert 'Superseded</span> <span class="small">by the lab\'s later report' in content
    assert '<span class="badge text-bg-warning">Preliminary</span> Performed at Acme' in content
    assert content.count("Preliminary</span>") == 1  # the final isn't
    assert AccessLog.objects.filter(object_ref=str(send_out.order.handoff.patient.uuid), outcome="ok").exists()


def test_a_narrative_report_comes_whole_with_its_lines_and_spacing(client: Client) -> None:
    orders = corpus_orders("ORD-2026-000055")
    intake("tx_narrative_pathology.hl7")
    send_out = orders["ORD-2026-000055"]
    client.force_login(ordering_clinician(send_out))
    content = client.get(reverse("lab:inbox:inbox")).content.decode()
    assert "Performed at Mercy General Hospital Laboratory" in content
    assert '<pre class="mb-0">' in content and "\n   - SEBORRHEIC KERATOSIS, IRRITATED.\n" in content


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("Cholesterol [Mass/volume] in Serum or Plasma", "Cholesterol"),
        ("LDL Cholesterol calculated", "LDL Cholesterol calculated"),
        ("Glucose", "Glucose"),
        ("Pneumonoultramicroscopicsilicovolcanoconiosis", "Pneumonoultramicroscopicsilic…"),
        ("Hemoglobin A1c/Hemoglobin.total in Blood by HPLC", "Hemoglobin A1c/Hemoglobin…"),
        ("Thyrotropin-releasing-hormone-stimulation-panel-x", "Thyrotropin-releasing…"),
    ],
)
def test_a_name_the_lab_sends_is_shortened_at_a_word_for_the_results_line(sent: str, shown: str) -> None:
    assert short_name(sent) == shown and len(shown) <= 30
