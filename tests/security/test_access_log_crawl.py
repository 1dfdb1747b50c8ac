"""Every page that shows a patient's data writes an access row naming that patient: a crawl to prove it.

Patients are seeded with every kind of record (handoffs, station visits, procedures with all their
documentation, specimens and labels, in-house and critical results, call-backs, send-outs packed and
their lab's messages, a break-glass grant). Then every page is opened as a superuser and as each role:

- admin: for every registered model, its list (and its list searched by a patient's MRN), and the
  change, history and delete-confirmation pages of its rows (a catalog entry's: those the patients'
  records point at, so its delete page lists them); pghistory's events pages filtered to each record;
- the app: every GET page of the URL conf, resolved from the patterns so a new URL is crawled without
  anyone adding it: pages without an id as they are, pages whose ``<uuid:uuid>`` names a record with
  every record of the kind the view declares (``log_refusals(subject=…)``). Other ids are listed in
  SKIPPED with the reason.

Each 200 response that carries a seeded patient's MRN or name must have written, in that request, an
access row of the signed-in user naming that patient. Patients are renamed to names no page could
show by chance; the search box's echo of the typed MRN is not the patient's data and is left out.
"""

import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from backoffice import services
from backoffice.audit import break_glass
from backoffice.audit.patients import has_patient, patient_path
from backoffice.audit.subjects import registered_subjects
from backoffice.models import AccessLogPatient, BreakGlass, Handoff, Patient, Station, User
from lab.models import CriticalCall, InboundMessage, RecollectionCall, Result, SendOut, Shipment, TestOrder
from procedures.models import ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from specimens import services as specimen_services
from specimens.models import Specimen
from tests.factories import HandoffFactory, StationFactory
from tests.lab import helpers as lab_helpers
from tests.lab import sendout_helpers
from tests.lab.hl7.intake_helpers import held_message
from tests.lab.sendouts.helpers import packed
from tests.procedures.helpers import one_of_everything
from tests.security.conftest import sign_in_verified
from tests.specimens import helpers as specimen_helpers

pytestmark = pytest.mark.django_db

# The kind of object each app's URLs name by uuid (backoffice.audit.subjects), and its model.
SUBJECT_MODELS: dict[str, type[models.Model]] = {
    "handoff": Handoff,
    "patient": Patient,
    "procedure": ProcedureOrder,
    "specimen": Specimen,
    "call": RecollectionCall,
    "testorder": TestOrder,
    "result": Result,
    "criticalcall": CriticalCall,
    "sendout": SendOut,
    "shipment": Shipment,
    "inboundmessage": InboundMessage,
    "breakglass": BreakGlass,
}
# App URLs with an id that is not a patient's record, each with why it is not crawled.
SKIPPED = {
    "account/sessions/<slug:ref>/end/": "POST only: ends one of the user's sessions, shows nothing",
    "stations/<slug:code>/turnover/": "POST only: a station's turnover, no patient",
    "lab/qc/controls/<int:pk>/": "a control lot's QC chart: control values, no patient",
    "lab/qc/lots/<int:pk>/run/": "POST only: a QC run on a kit lot",
    "handoffs/<uuid:uuid>/allergies/<int:pk>/remove/": "POST only: takes an allergy off, redirects to its page",
    "procedures/<uuid:uuid>/medications/<int:pk>/error/": "POST only: marks an entry in error, redirects",
    # The FHIR API answers no session (401): its access rows are tested with tokens in
    # tests/backoffice/test_fhir_api.py (reads and searches log every patient they return).
    "fhir/metadata": "the FHIR API: bearer tokens only, no session opens it",
    "fhir/<str:resource_type>": "the FHIR API: bearer tokens only, no session opens it",
    "fhir/<str:resource_type>/_search": "the FHIR API: bearer tokens only, no session opens it",
    "fhir/<str:resource_type>/<str:resource_id>": "the FHIR API: bearer tokens only, no session opens it",
}
# Admin site pages that belong to no model (index, app lists, login): no patient's data on them.
ROLES = ("superuser", "medical_assistant", "supervisor", "clinician", "lab_tech", "auditor")
# At most this many rows of each model are opened (first, middle, last), to keep the crawl quick.
PER_MODEL = 3


def seed(ma: User, supervisor: User, lab_tech: User, clinician: User) -> None:
    """Patients with one of every record the app keeps, written through the services."""
    quest = sendout_helpers.reference_lab()  # the send-out tests' default lab
    held_message()  # a lab's result on identity hold, with its events (before the desk's own send-outs)
    station = StationFactory.create(code="proc-crawl", name="Procedure room crawl")
    handoff = HandoffFactory.create(ordering_clinician=clinician, created_by=clinician)
    services.handoff_claim(handoff=handoff, by=ma)
    services.handoff_assign_station(handoff=handoff, station=station, by=ma)
    ptype = ProcedureType.objects.filter(is_active=True).first()
    assert ptype is not None
    procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=ma)
    left = HandoffFactory.create()  # a visit that ended: arrival, departure, turnover
    services.handoff_claim(handoff=left, by=ma)
    services.handoff_assign_station(handoff=left, station=StationFactory.create(code="chair-crawl"), by=ma)
    services.handoff_cancel(handoff=left, by=supervisor, reason="Went home")
    one_of_everything()  # documentation, checklist, vitals, medication, co-sign, addendum, charge
    _, [tube] = specimen_helpers.collected("CBC", ma=ma)  # a send-out
    printer = specimen_helpers.pdf_printer(station)
    specimen_services.specimen_labels_printed(specimens=[tube], by=ma, output="pdf", printer=printer)
    packed("TSH", ma=ma, lab_tech=lab_tech, lab=quest)  # a shipment with a tube in it
    specimen_helpers.call_back(ma=ma, lab_tech=lab_tech)
    lab_helpers.released_critical_result()  # QC, a released critical result, its call and attempt
    break_glass.grant(user=ma, patient=handoff.patient, reason="Collapsed in the waiting room")


def rename_patients() -> list[Patient]:
    """Names no page shows by chance (Faker's may be words like "Page" or "Rose")."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    patients = list(Patient.objects.order_by("pk"))
    for n, patient in enumerate(patients):
        tag = letters[n // 26] + letters[n % 26]
        patient.family_name, patient.given_name = f"Zorbel{tag}", f"Quenna{tag}"
        patient.save(update_fields=["family_name", "given_name"])
    return patients


SEARCH_FORM = re.compile(r'<form id="changelist-search".*?</form>', re.S)


def shown(content: str, patients: list[Patient]) -> set[int]:
    """The seeded patients whose MRN or name is on the page (the search box's typed text aside)."""
    text = SEARCH_FORM.sub("", content).lower()
    return {
        p.pk for p in patients if p.mrn.lower() in text or p.family_name.lower() in text or p.given_name.lower() in text
    }


class Crawl:
    def __init__(self, clients: dict[str, tuple[User, Client]], patients: list[Patient]) -> None:
        self.clients = clients
        self.patients = patients
        self.unlogged: list[str] = []
        self.pages = 0  # 200 responses that showed a seeded patient
        self.seen_urls: set[str] = set()

    def get(self, role: str, url: str, *, search: str = "") -> int:
        user, client = self.clients[role]
        mark = AccessLogPatient.objects.order_by("-log_id").values_list("log_id", flat=True).first() or 0
        if search:
            response = client.post(url, {"_search": "1", "q": search}, follow=True)
        else:
            try:
                response = client.get(url)
            except Exception as exc:  # a page that fails is reported with the others, by its URL
                raise AssertionError(f"{role} {url}: {exc!r}") from exc
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/"):
            return response.status_code
        on_page = shown(response.content.decode(errors="replace"), self.patients)
        if on_page:
            self.pages += 1
            logged = set(
                AccessLogPatient.objects.filter(log_id__gt=mark, log__user=user).values_list("patient_id", flat=True)
            )
            missing = on_page - logged
            if missing:
                names = ", ".join(Patient.objects.get(pk=pk).mrn for pk in sorted(missing))
                self.unlogged.append(f"{role} {'POST search ' if search else ''}{url}: shows {names}, not logged")
        return 200


def _sample(model: type[models.Model], pks: list[Any]) -> list[Any]:
    pks = sorted(set(pks))
    if len(pks) <= PER_MODEL:
        return pks
    return [pks[0], pks[len(pks) // 2], pks[-1]]


def admin_objects() -> dict[type[models.Model], list[Any]]:
    """The rows to open per admin model: patients' records, and the catalog rows those records point at."""
    registered = list(admin.site._registry)
    patient_models = [m for m in registered if has_patient(m)]
    pointed_at: dict[type[models.Model], list[Any]] = {}
    for model in patient_models:
        for field in model._meta.concrete_fields:
            target = field.related_model
            if not (field.many_to_one or field.one_to_one) or target is None or has_patient(target):
                continue
            values = model._default_manager.exclude(**{f"{field.name}__isnull": True}).values_list(
                field.attname, flat=True
            )
            pointed_at.setdefault(target, []).extend(values.distinct()[:20])
    objects = {}
    for model in registered:
        if model in patient_models:
            pks = list(model._default_manager.values_list("pk", flat=True))
        else:
            pks = pointed_at.get(model, [])
        objects[model] = _sample(model, pks)
    return objects


def _admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith("admin/"):
                continue  # admin's pages are crawled per model above
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


@pytest.fixture
def crawl(
    client: Client,
    settings: Any,
    medical_assistant: User,
    supervisor: User,
    lab_tech: User,
    clinician: User,
    auditor: User,
) -> Crawl:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False  # not about the second factor (tests/security/test_otp.py)
    seed(medical_assistant, supervisor, lab_tech, clinician)
    patients = rename_patients()
    root = User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple")
    users = {
        "superuser": root,
        "medical_assistant": medical_assistant,
        "supervisor": supervisor,
        "clinician": clinician,
        "lab_tech": lab_tech,
        "auditor": auditor,
    }
    clients = {}
    for role, user in users.items():
        c = sign_in_verified(Client(), user)  # supervisors and auditors owe the second factor
        clients[role] = (user, c)
    return Crawl(clients, patients)


def test_every_admin_page_showing_a_patient_logs_that_patient(crawl: Crawl) -> None:
    mrn = crawl.patients[0].mrn
    opened: list[str] = []
    for model, pks in admin_objects().items():
        changelist = _admin_url(model, "changelist")
        crawl.get("superuser", changelist)
        if has_patient(model) and admin.site._registry[model].get_search_fields(None):  # type: ignore[arg-type]
            crawl.get("superuser", changelist, search=mrn)
        for pk in pks:
            for view in ("change", "history", "delete"):
                if crawl.get("superuser", _admin_url(model, view, pk)) == 200:
                    opened.append(f"{model._meta.label} {view}")
    # pghistory's events, filtered to each tracked record as its "Events" link does, and its snapshots'.
    events = reverse("admin:pghistory_middlewareevents_changelist")
    snapshot_models = [m for m in admin.site._registry if any(f.name == "pgh_obj" for f in m._meta.concrete_fields)]
    for snapshots in snapshot_models:
        tracked = snapshots._meta.get_field("pgh_obj").related_model
        assert isinstance(tracked, type)
        for pk in _sample(tracked, list(tracked._default_manager.values_list("pk", flat=True))):
            obj = f"{tracked._meta.label}:{pk}"
            assert crawl.get("superuser", f"{events}?obj={obj}") == 200
            assert crawl.get("superuser", f"{events}?obj={obj}&method=tracks") == 200
            assert crawl.get("superuser", f"{_admin_url(snapshots, 'changelist')}?obj={obj}") == 200

    assert not crawl.unlogged, "\n".join(crawl.unlogged)
    # The crawl reached the records: every kind of page, of the clinical models and of the catalogs.
    assert {
        "backoffice.Patient change",
        "backoffice.Patient history",
        "backoffice.Patient delete",
        "backoffice.Handoff history",
        "backoffice.StationEvent change",
        "procedures.VitalSigns change",
        "lab.Result change",
        "backoffice.User delete",  # a clinician's account: it would take the handoffs they ordered
        "procedures.ProcedureType delete",
    } <= set(opened)
    assert crawl.pages > 100


def test_every_app_page_showing_a_patient_logs_that_patient(crawl: Crawl) -> None:
    assert set(SUBJECT_MODELS) == registered_subjects(), "a new kind of object in URLs: add it to SUBJECT_MODELS"
    routes = sorted(_walk(get_resolver().url_patterns), key=lambda item: item[0])
    crawled = 0
    for route, pattern in routes:
        params = {name for _, name in _PARAM.findall(route)}
        if not params:
            urls = ["/" + route]
        elif params == {"uuid"}:
            subject = getattr(pattern.callback, "audit_subject", None)
            assert subject in SUBJECT_MODELS, f"{route}: its view names no kind of object (log_refusals(subject=…))"
            model = SUBJECT_MODELS[subject]
            # Every record of the kind: a few of each, in all their states (a send-out not yet collected too).
            uuids = model._default_manager.order_by("pk").values_list("uuid", flat=True)
            urls = [_PARAM.sub(str(uuid), "/" + route) for uuid in uuids]
        else:
            assert route in SKIPPED, f"{route}: an id the crawl doesn't know; crawl it or say why not in SKIPPED"
            continue
        for url in urls:
            statuses = [crawl.get(role, url) for role in ROLES]
            crawled += statuses.count(200)
    assert not crawl.unlogged, "\n".join(crawl.unlogged)
    assert crawl.pages > 40
    assert crawled > 60


def test_the_crawl_would_catch_a_page_that_logs_nothing(crawl: Crawl, station: Station) -> None:
    """The check itself: a page with a patient's MRN and no access row is reported."""
    patient = crawl.patients[0]
    before = len(crawl.unlogged)

    # The admin's station page shows no patient; one whose name read like an MRN would, unlogged.
    with mock.patch.object(Station, "__str__", lambda self: patient.mrn):
        assert crawl.get("superuser", _admin_url(Station, "change", station.pk)) == 200
    assert len(crawl.unlogged) == before + 1
    assert patient.mrn in crawl.unlogged[-1]
    assert patient_path(Station) is None
