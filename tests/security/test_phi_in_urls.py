"""No patient's name or MRN where a shared workstation or a log keeps it: URLs, page titles, sessions.

- Every page's ``<title>`` (browsers keep titles in their history): every app and admin page, walked
  from the URL conf with real objects, names no patient, MRN or specimen accession.
- Admin searches are posted; the list URL they lead to holds an opaque token (backoffice/admin_search.py)
  that finds the same rows on every admin searching patients' data, and nothing in another session.
- The development server's and gunicorn's request logs hold no query string (backoffice/server_log.py).
- Flash messages naming a patient never reach the session table (cookie message storage).
"""

import io
import logging
import re
import runpy
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.servers.basehttp import WSGIRequestHandler
from django.db.models import Model
from django.test import Client
from django.urls import get_resolver, reverse
from gunicorn.config import Config

from backoffice import roles
from backoffice.admin_search import MAX_TERM_LENGTH, POSTED_VAR, SEALED_VAR
from backoffice.audit import break_glass
from backoffice.models import Handoff, Patient, Station, User
from backoffice.server_log import NoQueryString, strip_query
from lab.models import ControlLot, SendOut, TestOrder
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add
from specimens.models import Specimen
from tests.backoffice.test_admin import some_of_everything  # noqa: F401 - a fixture
from tests.factories import HandoffFactory, PatientFactory, UserFactory
from tests.lab.helpers import released_critical_result
from tests.lab.hl7.intake_helpers import held_message
from tests.security.test_url_authorization import (
    RULES,
    _admin_object_ids,
    _object_id,
    _packed_shipment,
    _subject,
    _url,
    _walk,
)
from tests.specimens.helpers import call_back, labelled

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL | re.IGNORECASE)
# Who opens an app page for the title walk: the first of these the URL table lets in.
APP_ROLES = ("supervisor", "medical_assistant", "clinician", "lab_tech", "auditor")


@pytest.fixture(autouse=True)
def no_second_factor(settings: Any) -> None:
    # The second factor has its own tests; these are about what pages and logs say.
    settings.OTP_REQUIRED_ROLES = []
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False


@pytest.fixture
def root(django_user_model: type[User]) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@clinic.test", "x-horse-battery-9"))
    return client


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _crawler(client: Client) -> Client:
    # A page that fails is the URL table's and its own tests' business; this walk reads the titles of those that open.
    client.raise_request_exception = False
    return client


def _sample_objects(request: pytest.FixtureRequest, handoff: Handoff) -> dict[str, str]:
    """One real object behind every kind of uuid in the URL conf (as the URL table's walk has them)."""
    ptype = ProcedureType.objects.filter(is_active=True).first()
    assert ptype is not None
    order = procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=handoff.ordering_clinician)[0]
    _, [specimen] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
    call = call_back(ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=UserFactory(role=roles.ROLE_LAB_TECH))
    critical = released_critical_result()
    box, [tube] = _packed_shipment()
    ma = request.getfixturevalue("medical_assistant")
    grant = break_glass.grant(user=ma, patient=handoff.patient, reason="Collapsed in the waiting room")
    return {
        "handoff": str(handoff.uuid),
        "procedure": str(order.uuid),
        "specimen": str(specimen.uuid),
        "call": str(call.uuid),
        "testorder": str(TestOrder.objects.get(specimen=specimen).uuid),
        "patient": str(handoff.patient.uuid),
        "result": str(critical.uuid),
        "criticalcall": str(critical.critical_call.uuid),
        "shipment": str(box.uuid),
        "sendout": str(SendOut.objects.get(order__specimen=tube).uuid),
        "inboundmessage": str(held_message().uuid),
        "breakglass": str(grant.uuid),
    }


def _unmistakable_names() -> None:
    """Every patient renamed to names no page's own words contain (Faker's could: "Page", "Jennings")."""
    for n, patient in enumerate(Patient.objects.order_by("pk")):
        letters = "".join(chr(ord("a") + int(d)) for d in f"{n:03d}")
        patient.family_name, patient.given_name = f"Quillfeather{letters}", f"Marisolde{letters}"
        patient.save(update_fields=["family_name", "given_name"])  # which keeps the search column too


def _identifiers() -> list[str]:
    """What identifies a patient on a page: names, MRNs, specimen accessions."""
    found: list[str] = []
    for family, given, mrn in Patient.objects.values_list("family_name", "given_name", "mrn"):
        found += [family, given, mrn]
    found += list(Specimen.objects.values_list("accession", flat=True))
    return [value for value in found if value]


def _title(html: str) -> str | None:
    match = TITLE.search(html)
    return unescape(match.group(1)).strip() if match else None


def _leaks(text: str, identifiers: list[str]) -> list[str]:
    lowered = text.lower()
    return [value for value in identifiers if value.lower() in lowered]


def test_no_page_title_names_a_patient(
    request: pytest.FixtureRequest, handoff: Handoff, station: Station, root: Client
) -> None:
    ids = _sample_objects(request, handoff)
    _unmistakable_names()
    identifiers = _identifiers()
    patient = Patient.objects.get(pk=handoff.patient_id)
    assert len(identifiers) > 10 and patient.family_name in identifiers and patient.mrn in identifiers
    clients = {role: _crawler(_signed_in(request.getfixturevalue(role))) for role in APP_ROLES}
    _crawler(root)
    admin_ids = _admin_object_ids()
    leaks: list[str] = []
    titled: set[str] = set()
    urls: list[tuple[str, str, Client]] = []
    for key, route in sorted(set(_walk(get_resolver().url_patterns))):
        samples = {
            "uuid": ids[_subject(key, route)],
            "code": station.code,
            "object_id": _object_id(key, admin_ids),
            "id": str(request.getfixturevalue("medical_assistant").pk),
            "pk": str(ControlLot.objects.order_by("pk").values_list("pk", flat=True).first()),
            "app_label": "backoffice",
            "content_type_id": "1",
            "url": "no-such-page/",
        }
        url = _url(route, samples)
        if key.startswith(("admin:", "admin/")):
            urls.append((key, url, root))
            continue
        rule = RULES.get(key, {})
        allowed = [role for role in APP_ROLES if rule.get(role) == "ok"]
        if allowed:
            urls.append((key, url, clients[allowed[0]]))
    # The patient's own admin pages and pghistory's events of the patient (titled with the object's name
    # by Django and pghistory: "<patient> | Change patient", "Change history: <patient>").
    for view in ("change", "history", "delete"):
        urls.append((f"patient {view}", reverse(f"admin:backoffice_patient_{view}", args=[patient.pk]), root))
    urls.append(
        (
            "patient's events",
            f"{reverse('admin:pghistory_middlewareevents_changelist')}?obj=backoffice.Patient:{patient.pk}",
            root,
        )
    )
    for key, url, client in urls:
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        title = _title(response.content.decode())
        if title is None:
            continue  # an htmx fragment: it changes no title
        titled.add(key)
        if found := _leaks(title, identifiers):
            leaks.append(f"{key} ({url}): {title!r} names {found}")
    assert leaks == []
    # The pages that used to carry a name or an accession in their title are among those walked.
    for key in (
        "handoff_detail",
        "procedures:detail",
        "lab:inbox:patient",
        "specimens:detail",
        "lab:results:specimen",
        "lab:results:result",
        "patient change",
        "patient history",
        "patient's events",
    ):
        assert key in titled, key
    assert len(titled) > 150


# --- admin search -----------------------------------------------------------------------------------


def _search(client: Client, model: type[Model], term: str, *, params: str = "") -> Any:
    path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") + params
    return client.post(path, {POSTED_VAR: "1", SEARCH_VAR: term})


def _assert_clean(url: str, *values: str) -> None:
    shown = unquote_plus(url).lower()
    assert all(value.lower() not in shown for value in values), url


def test_an_admin_search_finds_the_patient_with_no_name_or_mrn_in_the_url(root: Client) -> None:
    patient = PatientFactory(family_name="Gutierrez", given_name="Ximena", mrn="M777001")
    PatientFactory(family_name="Okonkwo", mrn="M777002")
    for term in ("Gutierrez", "gutierrez ximena", "M777001"):
        response = _search(root, Patient, term)
        assert response.status_code == 302
        location = response["Location"]
        assert f"{SEALED_VAR}=" in location and f"{SEARCH_VAR}=" not in location
        _assert_clean(location, "Gutierrez", "Ximena", "M777001")
        page = root.get(location)
        assert page.status_code == 200
        changelist = page.context["cl"]
        assert list(changelist.result_list) == [patient]
        assert changelist.query == term  # the search box shows what was typed, on the page only
        html = page.content.decode()
        # Every link the list offers (sorting, filters, "show all") carries the token, never the term.
        for href in re.findall(r'href="([^"]*)"', html):
            _assert_clean(unescape(href), "Gutierrez", "Ximena", "M777001")
        assert 'id="changelist-search"' in html and 'method="post"' in html


def test_sorting_and_filtering_a_searched_list_keep_the_search(root: Client) -> None:
    PatientFactory(family_name="Gutierrez", given_name="Ana", mrn="M777011")
    PatientFactory(family_name="Gutierrez", given_name="Berta", mrn="M777012")
    PatientFactory(family_name="Okonkwo", mrn="M777013")
    location = _search(root, Patient, "Gutierrez")["Location"]
    token = re.search(rf"{SEALED_VAR}=([^&]+)", location)
    assert token is not None
    sorted_page = root.get(f"{location}&o=-1")
    assert sorted_page.status_code == 200
    assert sorted_page.context["cl"].result_count == 2
    # Searching again from a sorted list keeps the sorting and replaces the search.
    again = _search(root, Patient, "Okonkwo", params="?o=-1&" + location.split("?", 1)[1])
    assert "o=-1" in again["Location"] and token.group(1) not in again["Location"]
    assert root.get(again["Location"]).context["cl"].result_count == 1
    # An empty search clears it: the list, unsearched.
    cleared = _search(root, Patient, "  ", params="?" + location.split("?", 1)[1])
    assert SEALED_VAR not in cleared["Location"]
    assert root.get(cleared["Location"]).context["cl"].result_count == 3


def test_a_search_link_with_q_is_moved_off_the_url(root: Client) -> None:
    PatientFactory(family_name="Gutierrez", mrn="M777021")
    path = reverse("admin:backoffice_patient_changelist")
    response = root.get(path, {"q": "Gutierrez", "o": "1"})
    assert response.status_code == 302
    _assert_clean(response["Location"], "Gutierrez")
    assert "o=1" in response["Location"]
    assert root.get(response["Location"]).context["cl"].result_count == 1


def test_a_token_means_nothing_in_another_session_or_altered(root: Client, django_user_model: type[User]) -> None:
    PatientFactory(family_name="Gutierrez", mrn="M777031")
    location = _search(root, Patient, "Gutierrez")["Location"]
    other = Client()
    other.force_login(django_user_model.objects.create_superuser("root2", "root2@clinic.test", "x-horse-battery-9"))
    refused = other.get(location)
    assert refused.status_code == 302 and SEALED_VAR not in refused["Location"]
    page = other.get(refused["Location"])
    assert "That search belongs to an earlier sign-in" in page.content.decode()
    assert page.context["cl"].query == ""
    altered = location[:-3] + ("AAA" if not location.endswith("AAA") else "BBB")
    assert SEALED_VAR not in root.get(altered)["Location"]
    assert root.get(reverse("admin:backoffice_patient_changelist") + f"?{SEALED_VAR}=not*base64").status_code == 302


def test_a_search_too_long_is_refused_with_a_message(root: Client) -> None:
    response = _search(root, Patient, "x" * (MAX_TERM_LENGTH + 1))
    assert response.status_code == 302 and SEALED_VAR not in response["Location"]
    assert f"at most {MAX_TERM_LENGTH} characters" in root.get(response["Location"]).content.decode()
    assert _search(root, Patient, "Guti\x00errez").status_code == 302  # a NUL is dropped, not sent to PostgreSQL


def _patient_path(search_field: str) -> str | None:
    """The attribute path from a row to its patient's MRN, for a search field that reaches it."""
    field = search_field.replace("^", "").replace("=", "").replace("@", "")
    return field.replace("__", ".") if field.endswith("mrn") else None


def _follow(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


# Every admin list whose search reaches a patient's MRN.
PHI_SEARCH_ADMINS = [
    (model, model_admin)
    for model, model_admin in admin.site._registry.items()
    if any(_patient_path(field) for field in model_admin.search_fields)
]


@pytest.mark.usefixtures("some_of_everything")  # procedures with every record, specimens, labels, results
def test_every_admin_searching_patients_finds_its_rows_by_mrn_through_a_token(root: Client) -> None:
    call_back(ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=UserFactory(role=roles.ROLE_LAB_TECH))
    HandoffFactory()  # another patient's row, which the search must leave out
    checked = []
    for model, model_admin in PHI_SEARCH_ADMINS:
        label = model._meta.label_lower
        row = model._default_manager.order_by("pk").first()
        if row is None:
            continue
        path = next(p for p in map(_patient_path, model_admin.search_fields) if p)
        mrn = _follow(row, path)
        location = _search(root, model, mrn)["Location"]
        _assert_clean(location, mrn)
        page = root.get(location)
        assert page.status_code == 200, label
        found = [obj.pk for obj in page.context["cl"].result_list]
        assert row.pk in found, label
        assert all(_follow(obj, path) == mrn for obj in page.context["cl"].result_list), label
        checked.append(label)
    # Every one has a row to find: patients, handoffs and their events, procedure orders, documentation,
    # events and charge lines, specimens, their events and labels, test orders and their events,
    # results, call-backs.
    assert len(checked) >= 14
    assert checked == [model._meta.label_lower for model, _ in PHI_SEARCH_ADMINS]


def test_every_admin_list_searches_through_a_token() -> None:
    """The site puts the posted search in front of every ModelAdmin, Django's and the packages' too."""
    plain = [type(m).__name__ for m in admin.site._registry.values() if not getattr(m, "posted_search", False)]
    assert plain == []
    lists_with_search = [m for m in admin.site._registry.values() if m.search_fields]
    assert len(lists_with_search) > 20


# --- server logs ------------------------------------------------------------------------------------


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """What Django's development server logs (settings.LOGGING's handler for django.server)."""
    [handler] = [
        h
        for h in logging.getLogger("django.server").handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, NoQueryString) for f in h.filters)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_the_development_server_logs_no_query_string(server_log: io.StringIO) -> None:
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)  # only its logging: no socket
    handler.request = None
    handler.requestline = "GET /admin/backoffice/patient/?q=Gutierrez&o=1 HTTP/1.1"
    handler.log_request(200, 4321)
    handler.requestline = "GET /no-such/?mrn=M777001 HTTP/1.1"
    handler.log_request(404, 12)
    lines = server_log.getvalue().splitlines()
    assert len(lines) == 2
    assert '"GET /admin/backoffice/patient/ HTTP/1.1" 200 4321' in lines[0]
    assert '"GET /no-such/ HTTP/1.1" 404 12' in lines[1]
    assert "Gutierrez" not in server_log.getvalue() and "M777001" not in server_log.getvalue()


def test_the_query_is_cut_wherever_a_url_sits_in_a_line() -> None:
    assert strip_query('"GET /a/b/?q=Rosa+Mart%C3%ADnez HTTP/1.1" 200') == '"GET /a/b/ HTTP/1.1" 200'
    assert (
        strip_query("from https://clinic.example/admin/?_s=x&q=Rosa to /x/?y")
        == "from https://clinic.example/admin/ to /x/"
    )
    assert strip_query("Not Found: /favicon.ico") == "Not Found: /favicon.ico"
    assert strip_query("Is this a question? yes") == "Is this a question? yes"


class _Response:
    status = "200 OK"
    sent = 512
    headers: list[tuple[str, str]] = []


class _Request:
    headers = [("REFERER", "https://clinic.example/admin/backoffice/patient/?q=Gutierrez")]


@pytest.mark.parametrize(
    "access_log_format",
    [None, '%(h)s "%(r)s" %(s)s q=%(q)s U=%(U)s f=%(f)s %({raw_uri}e)s %({query_string}e)s %({referer}i)s'],
    ids=["gunicorn's default format", "a format naming every atom that could hold the query"],
)
def test_gunicorn_logs_no_query_string(tmp_path: Path, access_log_format: str | None) -> None:
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logger_class", conf["logger_class"])
    cfg.set("accesslog", str(tmp_path / "access.log"))
    if access_log_format:
        cfg.set("access_log_format", access_log_format)
    logger = cfg.logger_class(cfg)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/admin/backoffice/patient/?q=Gutierrez",
        "PATH_INFO": "/admin/backoffice/patient/",
        "QUERY_STRING": "q=Gutierrez",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_REFERER": "https://clinic.example/admin/backoffice/patient/?q=M777001",
        "HTTP_USER_AGENT": "Chromium",
    }
    logger.access(_Response(), _Request(), environ, timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert "GET /admin/backoffice/patient/ HTTP/1.1" in line
    assert "Gutierrez" not in line and "M777001" not in line and "?" not in line


# --- flash messages ---------------------------------------------------------------------------------


def _sessions_text() -> str:
    """Every session row's data, decoded, as one text (whichever database session engine is set)."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    return " ".join(str(store().decode(row.session_data)) for row in store.get_model_class().objects.all())


def test_a_flash_naming_a_patient_never_reaches_the_session_table(medical_assistant: User, handoff: Handoff) -> None:
    client = _signed_in(medical_assistant)
    response = client.post(reverse("handoff_claim", args=[handoff.uuid]))
    assert response.status_code == 302
    name = handoff.patient.full_name
    assert _sessions_text() and name not in _sessions_text()  # stored nowhere on the server
    assert client.cookies[CookieStorage.cookie_name].value  # the message waits in the browser, signed
    page = client.get(response["Location"])
    assert f"You claimed {name}" in page.content.decode()  # and shown on the next page, once
    assert client.cookies[CookieStorage.cookie_name].value == ""  # read, so deleted
    assert name not in _sessions_text()
    assert f"You claimed {name}" not in client.get(response["Location"]).content.decode()
