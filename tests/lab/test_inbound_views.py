"""The desk's inbound pages: upload, the unmatched queue, identity holds, one message; who may see them,
what the access log says of each, and how many queries each list costs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from backoffice.models import AccessLog, User
from lab.models import InboundMessage, Result
from lab.sendouts.carried_over import open_send_outs_import
from lab.sendouts.intake import receive
from lab.workflow import IntakeChannel, IntakeOutcome
from tests.lab.hl7.intake_helpers import corpus_bytes, corpus_orders, csv_text, intake, order_row
from tests.lab.hl7.test_queues import LINDQVIST

pytestmark = pytest.mark.django_db

IO = IntakeOutcome
PAGES = ("lab:inbound:home", "lab:inbound:unmatched", "lab:inbound:holds")


def upload(client: Client, data: bytes, name: str = "results.hl7"):  # type: ignore[no-untyped-def]
    return client.post(reverse("lab:inbound:upload"), {"file": SimpleUploadedFile(name, data)}, follow=True)


def unmatched_message() -> InboundMessage:
    [received] = intake("unknown_accession.hl7")
    return received.message


def held_message() -> InboundMessage:
    corpus_orders("ORD-2026-000042")
    [received] = intake("identity_mismatch.hl7")
    return received.message


# --- Who may look --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["lab_tech", "supervisor"])
def test_the_desk_sees_every_inbound_page(client: Client, request: pytest.FixtureRequest, role: str) -> None:
    message = unmatched_message()
    client.force_login(request.getfixturevalue(role))
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("lab:inbound:message", args=[message.uuid])).status_code == 200


@pytest.mark.parametrize("role", ["medical_assistant", "clinician", "admin_user", "auditor", "outsider"])
def test_anyone_else_is_refused_and_the_refusal_logged(
    client: Client, request: pytest.FixtureRequest, role: str
) -> None:
    held = held_message()
    user: User = request.getfixturevalue(role)
    client.force_login(user)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 404, name
    assert client.get(reverse("lab:inbound:message", args=[held.uuid])).status_code == 404
    assert client.post(reverse("lab:inbound:resolve", args=[held.uuid]), {"reason": "x"}).status_code == 404
    refusal = AccessLog.objects.filter(user=user, object_ref=str(held.uuid), action="denied").first()
    assert refusal is not None and refusal.outcome == "not_found"
    # The refused attempt on a held message names the patient of the order it was held against.
    assert list(refusal.patients.values_list("mrn", flat=True)) == ["M100001"]
    assert held.events.count() == 2  # nothing was done to it
    assert AccessLog.objects.filter(user=user, what="results from labs", action="denied").exists()


def test_signing_in_is_needed(client: Client) -> None:
    response = client.get(reverse("lab:inbound:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- Upload ----------------------------------------------------------------------------------------------------


def test_an_uploaded_file_goes_through_the_same_intake(client: Client, lab_tech: User) -> None:
    corpus_orders("ORD-2026-000042")
    client.force_login(lab_tech)
    data = corpus_bytes("national_251_cmp_final.hl7") + corpus_bytes("unknown_accession.hl7")
    response = upload(client, data, "acme-0302.hl7")
    assert response.redirect_chain == [(reverse("lab:inbound:home"), 302)]
    content = response.content.decode()
    assert "acme-0302.hl7: 2 messages: 1 filed, 1 unmatched." in content
    filed, queued = InboundMessage.objects.order_by("id")
    assert (filed.channel, filed.source, filed.outcome) == (IntakeChannel.UPLOAD, "acme-0302.hl7", IO.MATCHED)
    assert queued.outcome == IO.UNMATCHED
    assert Result.objects.filter(inbound=filed).count() == 14
    assert set(Result.objects.values_list("released_by", flat=True)) == {lab_tech.pk}
    assert filed.events.first().actor == lab_tech
    # The page it lands on lists both, and logs the patient of the one that was filed.
    entry = AccessLog.objects.filter(what="results from labs").latest("at")
    assert list(entry.patients.values_list("mrn", flat=True)) == ["M100001"]


def test_an_empty_file_is_refused_with_a_message_and_nothing_stored(client: Client, lab_tech: User) -> None:
    client.force_login(lab_tech)
    response = client.post(reverse("lab:inbound:upload"), {"file": SimpleUploadedFile("empty.hl7", b"")})
    assert response.status_code == 422
    assert (
        "The submitted file is empty." in response.content.decode() or "The file is empty" in response.content.decode()
    )
    assert not InboundMessage.objects.exists()


def test_an_upload_without_a_file_says_so(client: Client, lab_tech: User) -> None:
    client.force_login(lab_tech)
    response = client.post(reverse("lab:inbound:upload"), {})
    assert response.status_code == 422 and "This field is required." in response.content.decode()


def test_an_uploaded_file_that_is_not_hl7_is_kept_and_refused(client: Client, lab_tech: User) -> None:
    client.force_login(lab_tech)
    response = upload(client, corpus_bytes("garbage.hl7"), "page.html")
    assert "page.html: 1 message: 1 not HL7, refused. What is not HL7 was kept and refused" in response.content.decode()
    stored = InboundMessage.objects.get()
    assert (stored.outcome, stored.channel) == (IO.REJECTED, IntakeChannel.UPLOAD)
    assert "502 Bad Gateway" in stored.raw


# --- The queues --------------------------------------------------------------------------------------------------


def test_the_unmatched_queue_shows_what_each_message_says_and_logs_no_patient(client: Client, lab_tech: User) -> None:
    message = unmatched_message()
    client.force_login(lab_tech)
    content = client.get(reverse("lab:inbound:unmatched")).content.decode()
    assert "Lindqvist, Erik Johan · born 1967-03-18 · MRN M100099" in content
    assert "ORD-2026-999990 / S000099990" in content and reverse("lab:inbound:message", args=[message.uuid]) in content
    entry = AccessLog.objects.get(what="unmatched results")
    assert (entry.action, entry.patients.count()) == ("list", 0)


def test_the_holds_queue_shows_both_identities_and_logs_the_orders_patient(client: Client, lab_tech: User) -> None:
    held = held_message()
    client.force_login(lab_tech)
    content = client.get(reverse("lab:inbound:holds")).content.decode()
    assert "MARTINEZ, ROSALIND · born 1981-02-14 · MRN M100001" in content
    assert "MARTINEZ, Rosa Elena</strong> · born 1980-02-14" in content
    assert reverse("lab:inbound:message", args=[held.uuid]) in content
    entry = AccessLog.objects.get(what="identity holds")
    assert list(entry.patients.values_list("mrn", flat=True)) == ["M100001"]


@pytest.mark.parametrize("count", [1, 4])
def test_each_list_page_costs_the_same_queries_however_many_it_shows(
    client: Client,
    lab_tech: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    corpus_orders("ORD-2026-000042")
    for n in range(count):
        unknown = corpus_bytes("unknown_accession.hl7").replace(b"000222|P|", f"00022{n}|P|".encode())
        held = corpus_bytes("identity_mismatch.hl7").replace(b"000140|P|", f"00014{n}|P|".encode())
        receive(unknown + held, channel=IntakeChannel.FILE)
    client.force_login(lab_tech)
    # 1 session, 2 user, 3 permissions and roles, 4 the queues' counts, 5 the latest messages with
    # their lab, order, test, specimen and patient, 6 the access row with its patients.
    with django_assert_num_queries(6):
        assert client.get(reverse("lab:inbound:home")).status_code == 200
    # 1 session, 2 user, 3 permissions and roles, 4 the queue (oldest first, with its total) with its
    # lab, 5 the stored-but-not-filed ones, 6 the access row.
    with django_assert_num_queries(6):
        assert client.get(reverse("lab:inbound:unmatched")).status_code == 200
    # 1 session, 2 user, 3 permissions and roles, 4 the holds with their lab, order, test, specimen
    # and the order's patient, 5 the access row with its patients.
    with django_assert_num_queries(5):
        assert client.get(reverse("lab:inbound:holds")).status_code == 200


# --- One message --------------------------------------------------------------------------------------------------


def test_an_unmatched_message_page_is_logged_by_the_message_without_a_patient(client: Client, lab_tech: User) -> None:
    message = unmatched_message()
    client.force_login(lab_tech)
    content = client.get(reverse("lab:inbound:message", args=[message.uuid])).content.decode()
    assert "Attach to the right order" in content and "Resolve without filing" in content
    assert "not looked up in our records" in content
    assert "ORC|RE|ORD-2026-999990^CLINIC^2.16.840.1.113883.19.5^ISO" in content  # the raw message, as received
    assert "2.310" in content and "Thyrotropin" in content
    entry = AccessLog.objects.get(object_ref=str(message.uuid))
    assert (entry.action, entry.what, entry.patients.count()) == ("view", "inbound message (no patient)", 0)


def test_a_held_message_page_shows_the_two_identities_side_by_side(
    client: Client,
    lab_tech: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    held = held_message()
    client.force_login(lab_tech)
    # 1 session, 2 user, 3 permissions and roles, 4 the message with its lab and profile, order, test,
    # specimen, patient and who resolved it, 5 the access row, 6 its events with their actors.
    with django_assert_num_queries(6):
        response = client.get(reverse("lab:inbound:message", args=[held.uuid]))
    content = response.content.decode()
    assert "Two identities, side by side" in content
    assert content.count("disagrees</span>") == 2  # the given name and the date of birth
    assert "ROSALIND" in content and "Rosa Elena" in content and "02/14/1981" in content and "02/14/1980" in content
    entry = AccessLog.objects.get(object_ref=str(held.uuid))
    assert list(entry.patients.values_list("mrn", flat=True)) == ["M100001"]


def test_attaching_from_the_page_files_it_and_says_so(client: Client, lab_tech: User) -> None:
    corpus_orders("ORD-2026-000050")
    open_send_outs_import(text=csv_text([order_row("ORD-2026-000050") | LINDQVIST]), by=lab_tech)
    message = unmatched_message()
    client.force_login(lab_tech)
    response = client.post(
        reverse("lab:inbound:attach", args=[message.uuid]), {"order_0": "S000010070", "note": "typo"}, follow=True
    )
    assert response.redirect_chain == [(reverse("lab:inbound:message", args=[message.uuid]), 302)]
    assert "Attached and filed: Filed 1 result to placer ORD-2026-000070" in response.content.decode()
    message.refresh_from_db()
    assert (message.outcome, message.resolved_by) == (IO.MATCHED, lab_tech)


def test_attaching_to_the_wrong_patient_is_shown_on_the_page_and_files_nothing(client: Client, lab_tech: User) -> None:
    corpus_orders("ORD-2026-000042")
    message = unmatched_message()
    client.force_login(lab_tech)
    response = client.post(reverse("lab:inbound:attach", args=[message.uuid]), {"order_0": "S000010019"})
    assert response.status_code == 422
    assert "Not attached: The patient disagrees with placer ORD-2026-000042" in response.content.decode()
    assert not Result.objects.exists() and InboundMessage.objects.get(pk=message.pk).is_open


def test_resolving_from_the_page_needs_a_reason_and_returns_to_the_queue(client: Client, supervisor: User) -> None:
    message = unmatched_message()
    client.force_login(supervisor)
    url = reverse("lab:inbound:resolve", args=[message.uuid])
    assert client.post(url, {"reason": ""}).status_code == 422
    response = client.post(url, {"reason": "Test message from the lab's go-live"}, follow=True)
    assert response.redirect_chain == [(reverse("lab:inbound:unmatched"), 302)]
    assert "No unmatched result waits." in response.content.decode()
    message.refresh_from_db()
    assert (message.resolution, message.resolved_by) == ("Test message from the lab's go-live", supervisor)


def test_get_is_refused_on_the_actions(client: Client, lab_tech: User) -> None:
    message = unmatched_message()
    client.force_login(lab_tech)
    for name in ("lab:inbound:attach", "lab:inbound:resolve"):
        assert client.get(reverse(name, args=[message.uuid])).status_code == 405
    assert client.get(reverse("lab:inbound:upload")).status_code == 405
