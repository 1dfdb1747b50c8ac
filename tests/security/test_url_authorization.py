"""Every URL pattern, every role: the GET outcome must match an explicit rule in this file.

A URL pattern without a rule fails the test, so a new page cannot ship without someone deciding who
may see it. Outcomes: "ok" (200, or a redirect that is not to a login page), "login" (redirect to the
app's or the admin's login), "forbidden" (403/404), "method" (405: POST-only, refused before the
permission check for every signed-in user).
"""

import re
import uuid as uuid_lib
from collections.abc import Iterator

import pytest
from axes.models import AccessFailureLog
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from backoffice import roles
from backoffice.audit import break_glass
from backoffice.models import User
from lab.models import ControlLot, SendOut, TestOrder
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add
from tests.backoffice.fhir_helpers import api_client
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from tests.lab.helpers import released_critical_result
from tests.lab.hl7.intake_helpers import held_message
from tests.lab.sendout_helpers import reference_lab
from tests.security.conftest import current_code, enroll
from tests.specimens.helpers import call_back, labelled

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "medical_assistant", "supervisor", "clinician", "lab_tech", "admin_user", "auditor", "outsider")

OK, LOGIN, FORBIDDEN, METHOD, UNAUTHORIZED = "ok", "login", "forbidden", "method", "unauthorized"


def rule(default: str, **per_role: str) -> dict[str, str]:
    """Anonymous users are sent to the login page unless said otherwise; every other role gets `default`."""
    return {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], default), **per_role}


ALL_SIGNED_IN = ROLES[1:]
CLINICAL = ("medical_assistant", "supervisor", "clinician", "lab_tech")


def only(*allowed: str, anonymous: str = LOGIN, default: str = FORBIDDEN) -> dict[str, str]:
    """Anonymous users go to login; the roles named get "ok"; everyone else gets `default`."""
    return {"anonymous": anonymous, **dict.fromkeys(ALL_SIGNED_IN, default), **dict.fromkeys(allowed, OK)}


POST_ONLY = rule(METHOD)  # GET refused with 405 for every signed-in user; POST tests check the permission.

# ---- backoffice -----------------------------------------------------------------------------------
BACKOFFICE: dict[str, dict[str, str]] = {
    "healthz": rule(OK, anonymous=OK),
    "login": rule(OK, anonymous=OK),  # signed-in users are sent on (redirect_authenticated_user)
    "logout": POST_ONLY,
    "otp_verify": rule(OK),
    "otp_setup": rule(OK),
    "account_security": rule(OK),
    "otp_disable": POST_ONLY,
    # Everyone ends their own sessions only: another person's ref is a logged 404, and someone who has
    # only the password is sent to the code step (tests/security/test_own_sessions.py).
    "session_end": POST_ONLY,
    "sessions_end_others": POST_ONLY,
    "session_keepalive": POST_ONLY,
    "session_status": rule(OK),
    "home": rule(OK, outsider=FORBIDDEN),  # redirects each role to its start page; no role: 403
    # The Admin role sees no patient's data (minimum necessary): no clinical page.
    "queue": only(*CLINICAL),
    "board": only("supervisor"),
    # Who is still in the clinic and what they wait for: every clinical role (tests/backoffice/test_clinic_now.py).
    "clinic_now": only(*CLINICAL),
    "handoff_patient_left": POST_ONLY,  # MAs and supervisors: tests/backoffice/test_clinic_now.py
    "handoff_new": only("medical_assistant", "supervisor", "clinician"),
    "patient_search": POST_ONLY,
    "handoff_needs": POST_ONLY,
    "handoff_detail": only(*CLINICAL),
    "handoff_claim": POST_ONLY,
    "handoff_release": POST_ONLY,
    "handoff_station": POST_ONLY,
    "handoff_verify": POST_ONLY,
    "handoff_start": POST_ONLY,
    "handoff_complete": POST_ONLY,
    "handoff_cancel": POST_ONLY,
    "handoff_hand_back": POST_ONLY,  # the claimer or a supervisor: tests/backoffice/test_hand_back.py
    "handoff_resend": POST_ONLY,  # the ordering clinician or a supervisor: the same
    "stations": only("medical_assistant", "supervisor"),  # they turn stations over
    "station_turnover": POST_ONLY,
    # The patient's allergies, from a handoff: whoever is with the patient asks and records them.
    "allergies": only("medical_assistant", "supervisor", "clinician"),
    "allergy_add": POST_ONLY,
    "allergy_remove": POST_ONLY,
    "allergy_none_known": POST_ONLY,
    "audit": only("supervisor", "auditor"),
    "audit_export": POST_ONLY,
    "audit_account_changes": only("supervisor", "auditor"),  # who changed roles, passwords, authenticators
    "audit_break_glass": only("supervisor", "auditor"),  # every emergency access, with what was seen
    # Emergency access: the clinical roles ask for it; a grant's record is its owner's only (the sample's
    # is the MA's: another clinical role gets 404), while it lasts.
    "break_glass": only("medical_assistant", "clinician", "lab_tech"),
    "break_glass_record": only("medical_assistant"),
}

# ---- procedures -----------------------------------------------------------------------------------
PROCEDURES: dict[str, dict[str, str]] = {
    "procedures:home": only("medical_assistant", "supervisor"),
    "procedures:queue": only("medical_assistant", "supervisor"),
    "procedures:competency": only("supervisor"),
    "procedures:competency_sign_off": POST_ONLY,
    "procedures:charges": only("supervisor"),
    "procedures:charges_csv": only("supervisor"),
    "procedures:detail": only("medical_assistant", "supervisor", "clinician"),
    "procedures:start": POST_ONLY,
    "procedures:document": POST_ONLY,
    "procedures:draft": POST_ONLY,
    "procedures:medication": POST_ONLY,
    "procedures:medication_error": POST_ONLY,
    "procedures:allergy_override": POST_ONLY,  # clinicians only (procedures.override_allergy)
    "procedures:not_done": POST_ONLY,
    "procedures:cosign": POST_ONLY,
    "procedures:return": POST_ONLY,
    "procedures:resubmit": POST_ONLY,
    "procedures:addendum": POST_ONLY,
}

# ---- Django admin ---------------------------------------------------------------------------------
# "admin:*" and unnamed admin routes: everyone but the (second-factor verified) admin goes to a login
# page; the admin gets in. The exceptions are listed below.
ADMIN_DEFAULT = only("admin_user", default=LOGIN)
ADMIN_REFUSED = only(default=LOGIN) | {"admin_user": FORBIDDEN}
# Records written only by the app's workflows or by machinery: admin may look, never add or delete.
_ADMIN_READ_ONLY = [
    "backoffice_credentialhistory",
    "backoffice_handoff",
    "backoffice_handoffevent",
    "backoffice_handoffhistory",
    "backoffice_patienthistory",
    "backoffice_stationevent",
    "backoffice_stationhistory",
    "lab_testorder",
    "pghistory_middlewareevents",
    "procedures_addendum",
    "procedures_chargeline",
    "procedures_competency",
    "procedures_competencyhistory",
    "procedures_medicationadministration",
    "procedures_medicationerror",
    "procedures_orderedmedication",
    "procedures_allergyoverride",
    "procedures_drugchargeline",
    "backoffice_allergy",
    "backoffice_allergyhistory",
    "procedures_proceduredocumentation",
    "procedures_proceduredocumentationhistory",
    "procedures_procedureevent",
    "procedures_procedureorder",
    "procedures_procedureorderhistory",
    "procedures_stepcompletion",
    "procedures_vitalsigns",
    "procedures_vitalsignshistory",
    "lab_testorderevent",
    "lab_recollectioncall",
    "lab_recollectioncallevent",
    # The send-out desk's records move only through its services (lab.sendouts).
    "lab_sendout",
    "lab_sendoutevent",
    "lab_shipment",
    "lab_shipmentevent",
    "lab_outboundmessage",
    "specimens_labelprint",
    "specimens_specimen",
    "specimens_specimenevent",
    "specimens_specimenhistory",
    "lab_qcrun",
    "lab_result",
    "lab_resultevent",
    "lab_resulthistory",
    "lab_criticalcall",
    "lab_criticalcallattempt",
    "lab_criticalcallevent",
]
# Models the admin role holds no permission on at all.
# Inbound HL7 messages too: each holds a patient's results, matched or not; only the desk's pages show them.
# Roles and their permissions, and authenticators, are a superuser's (backoffice.roles.ADMIN_APPS).
_ADMIN_NO_ACCESS = [
    "auth_group",
    "otp_totp_totpdevice",
    "axes_accessfailurelog",
    "axes_accesslog",
    "django_tasks_database_dbtaskresult",
    "lab_inboundmessage",
    "lab_inboundmessageevent",
    # An API client's token reads patients' records: superusers only (backoffice.admin_site's Internals).
    "fhir_apiclient",
]
# Patients' data: the Admin role opens none of it (backoffice.roles.CLINICAL_RECORDS), nor pghistory's
# events across models, which carry patients' changes.
_ADMIN_NO_PHI = [
    *(f"{app}_{model}" for app, models in roles.CLINICAL_RECORDS.items() for model in models),
    "pghistory_middlewareevents",
]
_NO_PHI_HISTORY = {f"admin:{model}_history": model for model in _ADMIN_NO_PHI}
ADMIN: dict[str, dict[str, str]] = {
    **{f"admin:{model}_{view}": ADMIN_REFUSED for model in _ADMIN_READ_ONLY for view in ("add", "delete")},
    **{
        f"admin:{model}_{view}": ADMIN_REFUSED
        for model in _ADMIN_NO_PHI
        for view in ("add", "change", "changelist", "delete", "history")
    },
    **{
        f"admin:{model}_{view}": ADMIN_REFUSED
        for model in _ADMIN_NO_ACCESS
        for view in ("add", "change", "changelist", "delete", "history")
    },
    # Unlocking is deleting an attempt; adding one is not something anyone does by hand.
    "admin:axes_accessattempt_add": ADMIN_REFUSED,
    # Planting or reading an authenticator's secret would let an admin sign in as its owner.
    "admin:otp_totp_totpdevice_config": ADMIN_REFUSED,
    "admin:otp_totp_totpdevice_qrcode": ADMIN_REFUSED,
    # Setting someone's password is signing in as them: superusers only, and logged as a reset.
    "admin:auth_user_password_change": ADMIN_REFUSED,
    "admin:backoffice_user_delete": ADMIN_REFUSED,  # staff leave by deactivation
    "admin:autocomplete": ADMIN_REFUSED,  # no autocomplete field is asked for in this request
    "admin:view_on_site": ADMIN_REFUSED,  # no model here has get_absolute_url
    "admin/(?P<url>.*)": ADMIN_REFUSED,  # the catch-all: unknown admin URLs are 404
    # Login pages are open; signed-in non-staff see the admin login form telling them so.
    "admin:login": rule(OK, anonymous=OK),
    # GET is refused (405) for the admin; the admin site sends anyone else to its index.
    "admin:logout": rule(OK, admin_user=METHOD),
}

# ---- specimens and lab ----------------------------------------------------------------------------
SPECIMEN_VIEWERS = ("medical_assistant", "supervisor", "clinician", "lab_tech")
SPECIMENS: dict[str, dict[str, str]] = {
    "specimens:tracking": only(*SPECIMEN_VIEWERS),
    "specimens:scan": POST_ONLY,
    "specimens:confirm": POST_ONLY,
    "specimens:detail": only(*SPECIMEN_VIEWERS),
    "specimens:hand_over": POST_ONLY,
    "specimens:receive": POST_ONLY,
    "specimens:reject": POST_ONLY,
    "specimens:reprint": POST_ONLY,
    "specimens:not_collected": POST_ONLY,
    "specimens:start_testing": POST_ONLY,
    "specimens:testing_done": POST_ONLY,
    "specimens:store": POST_ONLY,
    "specimens:dispose": POST_ONLY,
    "lab:collect": POST_ONLY,
    "lab:labels": POST_ONLY,
    "lab:calls": only("supervisor", "clinician"),
    "lab:call_done": POST_ONLY,
    "lab:cancel": POST_ONLY,
    "lab:acknowledge": POST_ONLY,
}

# ---- lab: the in-house bench and the clinician's results (one table per subpackage) -----------------
# The bench's QC pages: lab techs and supervisors (lab.run_qc); admins keep kits and controls in admin.
LAB_QC: dict[str, dict[str, str]] = {
    "lab:qc:board": only("supervisor", "lab_tech"),
    "lab:qc:run": POST_ONLY,
    "lab:qc:chart": only("supervisor", "lab_tech"),
}
LAB_RESULTS: dict[str, dict[str, str]] = {
    # The bench and the verification list: who enters and verifies results.
    "lab:results:bench": only("supervisor", "lab_tech"),
    "lab:results:scan": POST_ONLY,
    "lab:results:verification": only("supervisor", "lab_tech"),
    # A specimen's results (its uuid: "specimens/<uuid>/") and one result's history: whoever may read results.
    "lab:results:specimen": only(*CLINICAL),
    "lab:results:enter": POST_ONLY,
    "lab:results:result": only(*CLINICAL),
    "lab:results:correct": POST_ONLY,
    "lab:results:verify": POST_ONLY,
    "lab:results:release": POST_ONLY,
    "lab:results:send_back": POST_ONLY,
    "lab:results:amend": POST_ONLY,
    "lab:results:close_review": POST_ONLY,
}
LAB_CRITICALS: dict[str, dict[str, str]] = {
    # Clinicians see their own calls (none of the sample's).
    "lab:criticals:open": only("supervisor", "clinician", "lab_tech"),
    "lab:criticals:panel": only("supervisor", "clinician", "lab_tech"),
    "lab:criticals:report": only("supervisor", "lab_tech"),
    "lab:criticals:detail": only("supervisor", "lab_tech"),  # another clinician's call: 404
    "lab:criticals:attempt": POST_ONLY,
    "lab:criticals:acknowledge": POST_ONLY,
}
# Turnaround times (lab.view_turnaround): supervisors run the lab; there is no lab director role.
LAB_TURNAROUND: dict[str, dict[str, str]] = {
    "lab:turnaround:dashboard": only("supervisor"),
    "lab:turnaround:export_csv": only("supervisor"),
}
LAB_INBOX: dict[str, dict[str, str]] = {
    "lab:inbox:inbox": only("supervisor", "clinician"),  # who acknowledges results: their own, or for one away
    "lab:inbox:acknowledge": POST_ONLY,
    "lab:inbox:patient": only(*CLINICAL),  # a patient's results: whoever may read results
}

LAB_SEND_OUTS: dict[str, dict[str, str]] = {
    # The send-out desk (lab.run_send_out_desk): lab techs and supervisors; admins keep the labs in admin.
    "lab:sendouts:desk": only("supervisor", "lab_tech"),
    "lab:sendouts:shipment_new": POST_ONLY,
    "lab:sendouts:shipment": only("supervisor", "lab_tech"),
    "lab:sendouts:pack": POST_ONLY,
    "lab:sendouts:unpack": POST_ONLY,
    "lab:sendouts:manifest": POST_ONLY,
    "lab:sendouts:requisitions": POST_ONLY,
    "lab:sendouts:dispatch": POST_ONLY,
    "lab:sendouts:shipment_cancel": POST_ONLY,
    "lab:sendouts:send_out": only("supervisor", "lab_tech"),
    "lab:sendouts:answers": POST_ONLY,
    "lab:sendouts:requisition": POST_ONLY,
    "lab:sendouts:cancel": POST_ONLY,
    "lab:sendouts:retry": POST_ONLY,
}

LAB_INBOUND: dict[str, dict[str, str]] = {
    # Results coming back, at the desk (lab.run_send_out_desk and lab.view_inboundmessage): the upload
    # page, the unmatched and identity-hold queues and one message, for lab techs and supervisors.
    "lab:inbound:home": only("supervisor", "lab_tech"),
    "lab:inbound:upload": POST_ONLY,
    "lab:inbound:unmatched": only("supervisor", "lab_tech"),
    "lab:inbound:holds": only("supervisor", "lab_tech"),
    "lab:inbound:message": only("supervisor", "lab_tech"),
    "lab:inbound:attach": POST_ONLY,
    "lab:inbound:resolve": POST_ONLY,
}

# The FHIR API takes an API client's bearer token only: no session opens it, whoever is signed in
# (tests/backoffice/test_fhir_api.py tests the tokens, scopes and methods).
FHIR: dict[str, dict[str, str]] = dict.fromkeys(
    ("fhir:metadata", "fhir:search", "fhir:search_post", "fhir:read"), rule(UNAUTHORIZED, anonymous=UNAUTHORIZED)
)

RULES: dict[str, dict[str, str]] = {
    **BACKOFFICE,
    **PROCEDURES,
    **SPECIMENS,
    **LAB_QC,
    **LAB_RESULTS,
    **LAB_CRITICALS,
    **LAB_INBOX,
    **LAB_TURNAROUND,
    **LAB_SEND_OUTS,
    **LAB_INBOUND,
    **FHIR,
    **ADMIN,
}


def rule_for(key: str) -> dict[str, str] | None:
    if key in RULES:
        return RULES[key]
    if key.startswith(("admin:", "admin/")):
        return ADMIN_DEFAULT
    return None


_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(rule key, raw route) for every endpoint: the pattern's full name, or its route if unnamed."""
    for entry in patterns:
        route = prefix + str(entry.pattern).lstrip("^").rstrip("$")
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, route, ns)
        else:
            yield (f"{namespace}{entry.name}" if entry.name else route), route


def _url(route: str, samples: dict[str, str]) -> str:
    def sample(match: re.Match[str]) -> str:
        return samples.get(match.group(1), "1")

    return "/" + _CONVERTER.sub(sample, _GROUP.sub(sample, route.replace("\\", "")))


def _outcome(status: int, location: str) -> str:
    if status == 200:
        return OK
    if status in (301, 302):
        if location.startswith((reverse("login"), reverse("admin:login"), reverse("otp_verify"))):
            return LOGIN
        return OK
    if status in (403, 404):
        return FORBIDDEN
    if status == 405:
        return METHOD
    if status == 401:
        return UNAUTHORIZED
    return f"status {status}"


def _subject(key: str, route: str) -> str:
    """The kind of object a URL's uuid names: a handoff, unless the route is an app's own object."""
    if "handoffs/" in route:
        return "handoff"
    if key.startswith("procedures:"):
        return "procedure"
    if key.startswith("specimens:"):
        return "specimen"
    if key.startswith("lab:call"):
        return "call"
    if "tests/" in route:
        return "testorder"
    if key.startswith("lab:results:"):
        return "specimen" if "specimens/" in route else "result"
    if key.startswith("lab:criticals:"):
        return "criticalcall"
    if key.startswith("lab:inbox:") and "patients/" in route:
        return "patient"
    if key.startswith("lab:sendouts:"):
        return "shipment" if "shipments/" in route else "sendout"
    if key.startswith("lab:inbound:"):
        return "inboundmessage"
    if key.startswith("break_glass"):
        return "breakglass"
    return "handoff"


def _client_for(role: str, request: pytest.FixtureRequest) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    user: User = request.getfixturevalue(role)
    if role in ("admin_user", "supervisor", "auditor"):
        # These roles need the second factor under the production policy: sign in the way they do.
        device = enroll(user)
        response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302
        response = client.post(reverse("otp_verify"), {"code": current_code(device)})
        assert response.status_code == 302
    else:
        client.force_login(user)
    return client


def _admin_object_ids() -> dict[str, str]:
    """A real primary key per admin model ("app_model" → pk), so change/history/delete reach the object."""
    ids = {}
    for model in admin.site._registry:
        pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        ids[f"{model._meta.app_label}_{model._meta.model_name}"] = str(pk) if pk is not None else "1"
        ids[f"{model._meta.app_label}/{model._meta.model_name}"] = ids[
            f"{model._meta.app_label}_{model._meta.model_name}"
        ]
    return ids


def _object_id(key: str, ids: dict[str, str]) -> str:
    for model, pk in ids.items():
        if key.startswith((f"admin:{model}_", f"admin/{model}/")):
            return pk
    return "1"


def _packed_shipment():  # type: ignore[no-untyped-def]
    """A shipment with one tube packed (a TSH for the sample lab): the desk's object URLs have one to name."""
    from tests.lab.sendouts.helpers import packed

    reference_lab("TSH", name="URL table reference lab")
    return packed(
        "TSH", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=UserFactory(role=roles.ROLE_LAB_TECH)
    )


def test_every_url_has_an_authorization_rule_and_keeps_it(request: pytest.FixtureRequest, handoff, station) -> None:  # type: ignore[no-untyped-def]
    ptype = ProcedureType.objects.filter(is_active=True).first()
    assert ptype is not None
    order = procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=handoff.ordering_clinician)[0]
    _, [specimen] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
    call = call_back(ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=UserFactory(role=roles.ROLE_LAB_TECH))
    ids = {
        "handoff": str(handoff.uuid),
        "procedure": str(order.uuid),
        "specimen": str(specimen.uuid),
        "call": str(call.uuid),
        "testorder": str(TestOrder.objects.get(specimen=specimen).uuid),
        "patient": str(handoff.patient.uuid),
    }
    critical = released_critical_result()  # a released LL hemoglobin and the call it opened
    ids["result"], ids["criticalcall"] = str(critical.uuid), str(critical.critical_call.uuid)
    box, [tube] = _packed_shipment()
    ids["shipment"], ids["sendout"] = str(box.uuid), str(SendOut.objects.get(order__specimen=tube).uuid)
    ids["inboundmessage"] = str(held_message().uuid)  # a result on identity hold against an order
    ma = request.getfixturevalue("medical_assistant")
    grant = break_glass.grant(user=ma, patient=handoff.patient, reason="Collapsed in the waiting room")
    ids["breakglass"] = str(grant.uuid)
    # A row for every admin model the admin may not open, so the refusal is tested on a real object.
    AccessFailureLog.objects.create(username="someone", ip_address="127.0.0.1", user_agent="", path_info="/login/")
    api_client(request.getfixturevalue("supervisor"))
    endpoints = sorted(set(_walk(get_resolver().url_patterns)))
    missing = [key for key, _ in endpoints if rule_for(key) is None]
    assert not missing, "new URL without an authorization rule: " + ", ".join(missing)
    stale = sorted(set(RULES) - {key for key, _ in endpoints})
    assert not stale, f"rules for URLs that no longer exist: {stale}"

    clients = {role: _client_for(role, request) for role in ROLES}
    admin_ids = _admin_object_ids()
    with_rows = {
        f"{model._meta.app_label}_{model._meta.model_name}"
        for model in admin.site._registry
        if model._default_manager.exists()
    }
    mismatches: list[str] = []
    checked = 0
    for key, route in endpoints:
        samples = {
            "uuid": ids[_subject(key, route)],
            "code": station.code,
            "object_id": _object_id(key, admin_ids),
            "id": str(request.getfixturevalue("medical_assistant").pk),  # admin's password-change page
            # The QC pages' ids: a control lot (its chart), a kit lot (a run, POST only).
            "pk": str(ControlLot.objects.order_by("pk").values_list("pk", flat=True).first()),
            "app_label": "backoffice",
            "content_type_id": "1",
            "url": "no-such-page/",
        }
        url = _url(route, samples)
        expected = rule_for(key)
        assert expected is not None
        if key in _NO_PHI_HISTORY and _NO_PHI_HISTORY[key] not in with_rows:
            # No such object: admin's history page sends everyone on to the index before it asks for a
            # permission, and shows nothing (the refusal is tested where the walk has a row).
            expected = {**expected, "admin_user": OK}
        for role, client in clients.items():
            response = client.get(url)
            got = _outcome(response.status_code, response.get("Location", ""))
            checked += 1
            if got != expected[role]:
                mismatches.append(f"{key} ({url}) as {role}: expected {expected[role]}, got {got}")
    assert not mismatches, "\n".join(mismatches)
    assert checked > 100
    assert checked == len(endpoints) * len(ROLES)


def test_a_url_without_a_rule_is_reported() -> None:
    assert rule_for("some_new_page") is None
    assert rule_for("admin:backoffice_station_changelist") is ADMIN_DEFAULT


def test_unknown_uuids_are_not_found_for_roles_that_may_see_the_page(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    missing = str(uuid_lib.uuid4())
    assert client.get(reverse("handoff_detail", args=[missing])).status_code == 404
    assert client.get(reverse("procedures:detail", args=[missing])).status_code == 404


def test_every_refused_object_url_names_the_patient_in_the_access_log(client: Client, outsider: User, handoff) -> None:  # type: ignore[no-untyped-def]
    """A role without access to an object URL is refused, and the DENIED row names the object's patient.

    Walks every URL with an object id in it; each app's ids are resolved through the registry it fills
    (backoffice.audit.subjects), whichever app's page refused.
    """
    from backoffice.models import AccessLog, Patient
    from tests.factories import HandoffFactory

    other = HandoffFactory()  # a procedure on another patient's handoff: the log must not name `handoff`'s
    ptype = ProcedureType.objects.filter(is_active=True).first()
    assert ptype is not None
    order = procedure_orders_add(handoff=other, procedure_types=[ptype], by=other.ordering_clinician)[0]
    third, [specimen] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
    objects = {
        "handoff": (str(handoff.uuid), handoff.patient),
        "procedure": (str(order.uuid), other.patient),
        "specimen": (str(specimen.uuid), third.patient),
    }
    call = call_back(ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=UserFactory(role=roles.ROLE_LAB_TECH))
    objects["call"] = (str(call.uuid), call.patient)
    objects["testorder"] = (str(TestOrder.objects.get(specimen=specimen).uuid), third.patient)
    objects["patient"] = (str(other.patient.uuid), other.patient)
    critical = released_critical_result()
    objects["result"] = (str(critical.uuid), critical.patient)
    objects["criticalcall"] = (str(critical.critical_call.uuid), critical.patient)
    box, [tube] = _packed_shipment()
    objects["shipment"] = (str(box.uuid), tube.patient)
    objects["sendout"] = (str(SendOut.objects.get(order__specimen=tube).uuid), tube.patient)
    held = held_message()
    objects["inboundmessage"] = (str(held.uuid), held.send_out.order.handoff.patient)
    grant = break_glass.grant(
        user=UserFactory(role=roles.ROLE_CLINICIAN), patient=other.patient, reason="Collapsed in the waiting room"
    )
    objects["breakglass"] = (str(grant.uuid), other.patient)
    client.force_login(outsider)
    checked = 0
    for key, route in sorted(set(_walk(get_resolver().url_patterns))):
        if "<uuid:uuid>" not in route or key.startswith("admin"):
            continue
        ref, patient = objects[_subject(key, route)]
        url = _url(route, {"uuid": ref})
        send = client.post if RULES[key] is POST_ONLY else client.get
        assert send(url).status_code in (403, 404), url
        entry = AccessLog.objects.filter(user=outsider, object_ref=ref).latest("id")
        assert entry.outcome in ("denied", "not_found"), key
        assert list(entry.patients.all()) == [patient], f"{key}: the refusal must name {patient}"
        checked += 1
    # 18 handoff URLs (3 of them lab's and specimens', 4 the patient's allergies, 1 "patient left"), 12 procedure,
    # 10 specimen,
    # 1 call-back, 2 lab test, 1 patient (its results), 2 bench pages of a specimen, 7 of a result, 3 of a
    # critical call, 7 of a send-out shipment, 5 of a send-out, 3 of a lab's message (held against an order),
    # 1 break-glass.
    assert checked == 72
    assert Patient.objects.count() >= 2
