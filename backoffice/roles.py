"""Roles are Django groups; this table says which permissions each one holds.

`sync_roles` runs after every migrate (see apps.py), so a permission added by a later
migration reaches its roles without a hand-written data migration each time.
"""

from typing import Any

ROLE_MEDICAL_ASSISTANT = "Medical assistant"
ROLE_SUPERVISOR = "Supervisor"
ROLE_CLINICIAN = "Clinician"
ROLE_LAB_TECH = "Lab technician"
ROLE_ADMIN = "Admin"
ROLE_AUDITOR = "Auditor"

ROLES = [ROLE_MEDICAL_ASSISTANT, ROLE_SUPERVISOR, ROLE_CLINICIAN, ROLE_LAB_TECH, ROLE_ADMIN, ROLE_AUDITOR]

_MA = {
    "backoffice.view_patient",
    "backoffice.view_handoff",
    "backoffice.add_handoff",
    "backoffice.claim_handoff",
    "backoffice.manage_station",
    "backoffice.view_station",
    "procedures.view_procedureorder",
    "procedures.perform_procedure",
    "specimens.view_specimen",
    "specimens.collect_specimen",
    "lab.cancel_testorder",
    "lab.view_result",
    # Allergies are asked and recorded by whoever is with the patient (backoffice.allergies).
    "backoffice.view_allergy",
    "backoffice.add_allergy",
    "backoffice.change_allergy",
    # Who is still in the clinic, and that one has gone (backoffice.pages.clinic_now). There is no
    # front-desk role: the MA (or a supervisor) records that the patient left.
    "backoffice.view_clinic_now",
    "backoffice.record_patient_left",
}
# Lab technicians receive at the bench and the send-out desk, and reject what can't be tested.
_SPECIMEN_HANDLING = {
    "specimens.view_specimen",
    "specimens.receive_specimen",
    "specimens.reject_specimen",
    "specimens.store_specimen",
}
# The in-house bench: QC, results entered and verified by a second person, critical calls.
_BENCH = {
    "lab.view_result",
    "lab.enter_result",
    "lab.verify_result",
    "lab.run_qc",
    "lab.view_qcrun",
    "lab.view_criticalcall",
    "lab.record_critical_call",
}
# The send-out desk: pack and ship send-outs, work the unmatched and identity-hold queues.
_SEND_OUT_DESK = {"lab.run_send_out_desk", "lab.view_sendout", "lab.view_shipment", "lab.view_inboundmessage"}
# Supervisors oversee procedures: co-sign and return, sign staff off, see the day's charges.
_PROCEDURE_SUPERVISION = {"procedures.supervise_procedure", "procedures.sign_off_competency", "procedures.view_charges"}
ROLE_PERMISSIONS: dict[str, set[str]] = {
    ROLE_MEDICAL_ASSISTANT: _MA,
    ROLE_SUPERVISOR: _MA
    | _PROCEDURE_SUPERVISION
    | _SPECIMEN_HANDLING
    | _BENCH
    | _SEND_OUT_DESK
    | {"lab.acknowledge_result"}
    | {"lab.view_recollectioncall", "lab.close_recollectioncall"}
    | {"backoffice.cancel_handoff", "backoffice.view_board", "backoffice.view_accesslog"}
    | {"backoffice.view_accountchange", "backoffice.view_breakglass"}
    # Paused sign-ins and supervisor confirmations, on the board (backoffice.accounts.alerts).
    | {"audit.view_securityalert"}
    # How long each step of a test takes (lab.turnaround): the supervisors run the lab (no lab director role).
    | {"lab.view_turnaround"},
    ROLE_CLINICIAN: {
        "backoffice.view_patient",
        "backoffice.view_handoff",
        "backoffice.add_handoff",
        "backoffice.cancel_handoff",
        "procedures.view_procedureorder",
        "specimens.view_specimen",
        "lab.view_recollectioncall",
        "lab.close_recollectioncall",
        "lab.cancel_testorder",
        "lab.view_result",
        "lab.acknowledge_result",
        "lab.view_criticalcall",
        "backoffice.view_allergy",
        "backoffice.add_allergy",
        "backoffice.change_allergy",
        # Their patients still in the clinic, and whether the results they wait for are back.
        "backoffice.view_clinic_now",
        # Only a clinician lifts an allergy's hard stop on a drug (procedures.medication).
        "procedures.override_allergy",
    },
    # The clinic-now board: which point-of-care tests patients in the clinic are waiting for.
    ROLE_LAB_TECH: {"backoffice.view_patient", "backoffice.view_handoff", "backoffice.view_station"}
    | {"backoffice.view_clinic_now"}
    | _SPECIMEN_HANDLING
    | _BENCH
    | _SEND_OUT_DESK,
    # Admins keep the catalogs and staff in Django admin; clinical work is not theirs.
    ROLE_ADMIN: set(),
    # Reads the access log and the account-change log, in the app (/audit/), and nothing else.
    ROLE_AUDITOR: {"backoffice.view_accesslog", "backoffice.view_accountchange", "backoffice.view_breakglass"},
}
# Emergency access to one patient's record, for the clinical roles outside a patient's care
# (backoffice.pages.break_glass). Supervisors already oversee every patient in the clinic.
for _role in (ROLE_MEDICAL_ASSISTANT, ROLE_CLINICIAN, ROLE_LAB_TECH):
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | {"backoffice.break_glass"}
# Not "auth": roles (groups) and their permissions are a superuser's, as are passwords and authenticators
# (backoffice.admin.UserAdmin), so an admin can neither raise its own access nor sign in as someone else.
ADMIN_APPS = {"backoffice", "procedures", "specimens", "lab"}
# Patients' data, in admin as in the app: the Admin role sees none of it (minimum necessary). Someone
# outside a patient's care who must see the record in an emergency breaks the glass (backoffice.pages.
# break_glass), which the Admin role can't either. Every model whose admin pages log access (any model
# leading to a patient: backoffice.audit.patients) is here; tests/backoffice/test_admin_role.py checks it.
CLINICAL_RECORDS = {
    "backoffice": (
        "patient",
        "patienthistory",
        "allergy",
        "allergyhistory",
        "handoff",
        "handoffevent",
        "handoffhistory",
        "stationevent",
    ),
    "procedures": (
        "procedureorder",
        "procedureorderhistory",
        "proceduredocumentation",
        "proceduredocumentationhistory",
        "stepcompletion",
        "vitalsigns",
        "vitalsignshistory",
        "medicationadministration",
        "medicationerror",
        "orderedmedication",
        "allergyoverride",
        "drugchargeline",
        "addendum",
        "procedureevent",
        "chargeline",
    ),
    "specimens": ("specimen", "specimenevent", "specimenhistory", "labelprint"),
    "lab": (
        "testorder",
        "testorderevent",
        "result",
        "resultevent",
        "resulthistory",
        "criticalcall",
        "criticalcallattempt",
        "criticalcallevent",
        "recollectioncall",
        "recollectioncallevent",
        "sendout",
        "sendoutevent",
        "shipment",
        "shipmentevent",
        "outboundmessage",
        "inboundmessage",
        "inboundmessageevent",
    ),
}
# Workflow permissions are clinical work; an admin keeps catalogs and staff, not patients' handoffs.
ADMIN_EXCLUDED = {
    "backoffice.add_handoff",
    "backoffice.claim_handoff",
    "backoffice.cancel_handoff",
    "backoffice.view_board",
    "backoffice.view_clinic_now",
    "backoffice.record_patient_left",
    "procedures.perform_procedure",
    "procedures.override_allergy",
    *_PROCEDURE_SUPERVISION,
    "specimens.collect_specimen",
    "specimens.receive_specimen",
    "specimens.reject_specimen",
    "specimens.store_specimen",
    "lab.close_recollectioncall",
    "lab.cancel_testorder",
    "lab.enter_result",
    "lab.verify_result",
    "lab.acknowledge_result",
    "lab.run_qc",
    "lab.record_critical_call",
    # The lab's turnaround times are for those who run the lab, not for who keeps its catalogs.
    "lab.view_turnaround",
    # Results, QC runs and critical calls are clinical records, changed only by the bench's services.
    "lab.add_result",
    "lab.change_result",
    "lab.delete_result",
    "lab.add_qcrun",
    "lab.change_qcrun",
    "lab.delete_qcrun",
    "lab.add_criticalcall",
    "lab.change_criticalcall",
    "lab.delete_criticalcall",
    # Send-outs, shipments and HL7 messages move only through the desk's services; an inbound
    # message holds a patient's results whether or not it was matched.
    "lab.run_send_out_desk",
    *(
        f"lab.{verb}_{model}"
        for verb in ("add", "change", "delete")
        for model in ("sendout", "shipment", "outboundmessage", "inboundmessage", "inboundmessageevent")
    ),
    "lab.view_inboundmessage",
    "lab.view_inboundmessageevent",  # its notes name the patient a message says it is about
    # Separation of duties: admins manage accounts and records, auditors and supervisors watch who
    # looked at what, admins included. The access log is written only by backoffice.audit.log in any case.
    "backoffice.view_accesslog",
    "backoffice.add_accesslog",
    "backoffice.change_accesslog",
    "backoffice.delete_accesslog",
    "backoffice.view_accesslogpatient",
    "backoffice.add_accesslogpatient",
    "backoffice.change_accesslogpatient",
    "backoffice.delete_accesslogpatient",
    # Who changed roles, passwords and authenticators is the auditors' to read, and nobody's to edit.
    *(f"backoffice.{verb}_accountchange" for verb in ("view", "add", "change", "delete")),
    # Staff leave by deactivation: their access rows and account changes keep pointing at them.
    "backoffice.delete_user",
    # Patients' data: none of it (CLINICAL_RECORDS), nor emergency access, nor its report.
    *(
        f"{app}.{verb}_{model}"
        for app, models in CLINICAL_RECORDS.items()
        for model in models
        for verb in ("view", "add", "change", "delete")
    ),
    "backoffice.break_glass",
    *(f"backoffice.{verb}_breakglass" for verb in ("view", "add", "change", "delete")),
    *(f"backoffice.{verb}_breakglassaccess" for verb in ("view", "add", "change", "delete")),
    # Sessions: each row's key is a credential; everyone ends their own (backoffice.accounts.sessions).
    *(f"backoffice.{verb}_usersession" for verb in ("view", "add", "change", "delete")),
}
# Beyond ADMIN_APPS: unlocking a locked-out account. Not pghistory's events across models, which hold
# patients' changes (stations' and credentials' histories stay, through their own admins).
# Authenticators (otp_totp) are a superuser's: adding or changing one plants a known secret on
# someone's account, and removing one turns their second factor off.
ADMIN_EXTRA = {
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
}


def sync_roles(apps: Any = None, **kwargs: Any) -> None:
    """Create the role groups and give each exactly its permissions."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from backoffice.accounts.changes import roles_table_sync

    # post_migrate reaches this app before later apps have their permissions; make them all now.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    with roles_table_sync():  # the code's table, not an account change (backoffice.accounts.changes)
        for role in ROLES:
            group, _ = Group.objects.get_or_create(name=role)
            if role == ROLE_ADMIN:
                wanted = [
                    p
                    for key, p in by_name.items()
                    if (key.split(".")[0] in ADMIN_APPS and key not in ADMIN_EXCLUDED) or key in ADMIN_EXTRA
                ]
            else:
                wanted = [by_name[key] for key in sorted(ROLE_PERMISSIONS[role]) if key in by_name]
            group.permissions.set(wanted)
