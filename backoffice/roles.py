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

ROLES = [ROLE_MEDICAL_ASSISTANT, ROLE_SUPERVISOR, ROLE_CLINICIAN, ROLE_LAB_TECH, ROLE_ADMIN]

_MA = {
    "backoffice.view_patient",
    "backoffice.view_handoff",
    "backoffice.add_handoff",
    "backoffice.claim_handoff",
    "backoffice.manage_station",
    "backoffice.view_station",
}
ROLE_PERMISSIONS: dict[str, set[str]] = {
    ROLE_MEDICAL_ASSISTANT: _MA,
    ROLE_SUPERVISOR: _MA | {"backoffice.cancel_handoff", "backoffice.view_board"},
    ROLE_CLINICIAN: {
        "backoffice.view_patient",
        "backoffice.view_handoff",
        "backoffice.add_handoff",
        "backoffice.cancel_handoff",
    },
    ROLE_LAB_TECH: {"backoffice.view_patient", "backoffice.view_handoff", "backoffice.view_station"},
    # Admins keep the catalogs and staff in Django admin; clinical work is not theirs.
    ROLE_ADMIN: set(),
}
ADMIN_APPS = {"backoffice", "procedures", "specimens", "lab", "auth"}
# Workflow permissions are clinical work; an admin keeps catalogs and staff, not patients' handoffs.
ADMIN_EXCLUDED = {
    "backoffice.add_handoff",
    "backoffice.claim_handoff",
    "backoffice.cancel_handoff",
    "backoffice.view_board",
}


def sync_roles(apps: Any = None, **kwargs: Any) -> None:
    """Create the role groups and give each exactly its permissions."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # post_migrate reaches this app before later apps have their permissions; make them all now.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        if role == ROLE_ADMIN:
            wanted = [p for key, p in by_name.items() if key.split(".")[0] in ADMIN_APPS and key not in ADMIN_EXCLUDED]
        else:
            wanted = [by_name[key] for key in sorted(ROLE_PERMISSIONS[role]) if key in by_name]
        group.permissions.set(wanted)
