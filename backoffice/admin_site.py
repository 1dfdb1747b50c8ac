"""The admin site: every ModelAdmin on it keeps patients' names and MRNs out of URLs and page titles.

``ClinicAdminSite`` is Django's AdminSite, made the default by ``ClinicAdminConfig`` (in
INSTALLED_APPS in place of ``django.contrib.admin``). Whatever registers a model (this project's
admin modules, Django's auth, axes, django-otp, pghistory), the site mixes ``PhiSafeAdmin`` into its
ModelAdmin class, so no admin list or page can be added that forgets it:

- searches are posted and list URLs carry an opaque token (``backoffice.admin_search``);
- every page that shows a patient's data writes an access row naming its patients
  (``backoffice.admin_access``);
- page titles, which browsers keep in their history, never hold an object's name: the change form's
  ``str(obj)`` (Django's "subtitle") is left out of ``<title>`` by ``templates/admin/base_site.html``,
  and the history page, whose title Django writes as "Change history: <object>", is titled by model.
  The page's heading still shows the object.

The site is also the clinic's: its name in the header and title, the index and sidebar in SECTIONS
rather than by Python app, and the machinery (SUPERUSERS_ONLY) kept from anyone but superusers.
"""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db.models.base import ModelBase
from django.http import HttpRequest, HttpResponse

from backoffice.admin_access import AccessLoggedPages
from backoffice.admin_search import PostedSearchAdmin


class PhiSafeAdmin(AccessLoggedPages, PostedSearchAdmin):
    """Mixed into every registered ModelAdmin by ClinicAdminSite; its pages of patient data are access-logged."""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # <title> only (base_site.html reads document_title first); the heading keeps the object's name.
        titled = {"document_title": f"Change history: {self.opts.verbose_name}", **(extra_context or {})}
        return super().history_view(request, object_id, titled)


# The index and the sidebar as an admin thinks of them, not by Python app: what the clinic offers, who
# works here, where, and what happened; patients' records only ever reach superusers (the Admin role has
# no permission on them, backoffice.roles.CLINICAL_RECORDS). Each model is "app_label.model_name" and
# keeps its place in its section; tests/backoffice/test_admin_index.py checks every registered one has one.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Catalogs",
        (
            "procedures.proceduretype",
            "procedures.procedurestep",
            "lab.testdefinition",
            "lab.analyte",
            "lab.referencerange",
            "specimens.specimentype",
            "specimens.container",
            "specimens.rejectionreason",
            "lab.kit",
            "lab.kitlot",
            "lab.qcrule",
            "lab.controllot",
            "lab.qcrun",  # a lot's runs, beside it: no patient in them
            "lab.escalationstep",
            "lab.referencelab",
            "lab.orderable",
            "lab.askatorderentry",
            "lab.dialectprofile",
            # The medication catalog and what allergies name (the cross-check reads both).
            "procedures.medication",
            "procedures.medicationpackage",
            "backoffice.drugclass",
            "backoffice.ingredient",
        ),
    ),
    (
        "Staff",
        (
            "backoffice.user",
            "backoffice.credential",
            "procedures.competency",
            "auth.group",
            "backoffice.rolepolicy",
            "axes.accessattempt",
        ),
    ),
    ("Stations", ("backoffice.station", "backoffice.examroom", "backoffice.equipment", "specimens.labelprinter")),
    (
        "Patients' records",
        (
            "backoffice.patient",
            "backoffice.allergy",
            "backoffice.handoff",
            "procedures.procedureorder",
            "procedures.proceduredocumentation",
            "procedures.stepcompletion",
            "procedures.vitalsigns",
            "procedures.orderedmedication",
            "procedures.allergyoverride",
            "procedures.medicationadministration",
            "procedures.medicationerror",
            "procedures.addendum",
            "procedures.chargeline",
            "procedures.drugchargeline",
            "specimens.specimen",
            "specimens.labelprint",
            "lab.testorder",
            "lab.result",
            "lab.criticalcall",
            "lab.criticalcallattempt",
            "lab.recollectioncall",
            "lab.sendout",
            "lab.shipment",
            "lab.outboundmessage",
            "lab.inboundmessage",
        ),
    ),
    (
        "Audit",
        (
            "axes.accesslog",
            "axes.accessfailurelog",
            "backoffice.credentialhistory",
            "procedures.competencyhistory",
            "backoffice.stationhistory",
            "backoffice.stationevent",
            "backoffice.patienthistory",
            "backoffice.allergyhistory",
            "backoffice.handoffhistory",
            "backoffice.handoffevent",
            "procedures.procedureorderhistory",
            "procedures.proceduredocumentationhistory",
            "procedures.vitalsignshistory",
            "procedures.procedureevent",
            "specimens.specimenhistory",
            "specimens.specimenevent",
            "lab.testorderevent",
            "lab.resulthistory",
            "lab.resultevent",
            "lab.criticalcallevent",
            "lab.recollectioncallevent",
            "lab.sendoutevent",
            "lab.shipmentevent",
            "lab.inboundmessageevent",
        ),
    ),
    # The machinery: authenticators (a key is a credential), every tracked record's history in one list,
    # the task worker's results. Superusers only, whatever permissions a role is given.
    # API clients of the FHIR API (backoffice.fhir): each holds a token that reads patients' records.
    (
        "Internals",
        (
            "otp_totp.totpdevice",
            "pghistory.middlewareevents",
            "django_tasks_database.dbtaskresult",
            "fhir.apiclient",
        ),
    ),
)
SUPERUSERS_ONLY = frozenset(dict(SECTIONS)["Internals"])
# What the index calls third-party tables: django-axes' names say "access", as our own access log does,
# Django's groups are our roles, and so on; their own pages keep their names.
INDEX_NAMES = {
    "auth.group": "Roles",
    "otp_totp.totpdevice": "Authenticators (TOTP devices)",
    "django_tasks_database.dbtaskresult": "Task results",
    "axes.accessattempt": "Sign-in pauses (unlock here)",
    "axes.accesslog": "Sign-ins",
    "axes.accessfailurelog": "Failed sign-ins",
    "pghistory.middlewareevents": "History of every tracked record",
    "fhir.apiclient": "FHIR API clients",
}


def model_key(model: type[Any]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


class SuperuserOnly:
    """Mixed into the admins of SUPERUSERS_ONLY: nobody else sees or changes them, whatever their role holds."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class ClinicAdminSite(admin.AdminSite):
    index_title = "Catalogs, staff and stations"

    @property
    def site_header(self) -> str:  # type: ignore[override]
        return f"{settings.CLINIC_NAME} · admin"

    @property
    def site_title(self) -> str:  # type: ignore[override]
        return f"{settings.CLINIC_NAME} admin"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The index and the sidebar in SECTIONS; one app's page (/admin/<app>/) as Django lists it."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        found = {model_key(m["model"]): m for app in self._build_app_dict(request).values() for m in app["models"]}
        sections = []
        for name, keys in SECTIONS:
            models = [found.pop(key) for key in keys if key in found]
            if models:
                sections.append(_section(name, models))
        if found:  # registered but given no place: shown, at the end, rather than lost
            sections.append(_section("Other", sorted(found.values(), key=lambda m: m["name"])))
        return sections

    def register(
        self,
        model_or_iterable: ModelBase | Any,
        admin_class: type[admin.ModelAdmin] | None = None,
        **options: Any,
    ) -> None:
        models = [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        for model in models:
            admin_class_for_model = phi_safe(admin_class or admin.ModelAdmin)
            if model_key(model) in SUPERUSERS_ONLY:
                admin_class_for_model = superusers_only(admin_class_for_model)
            super().register(model, admin_class_for_model, **options)


def _section(name: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    for model in models:
        model["name"] = INDEX_NAMES.get(model_key(model["model"]), model["name"])
    slug = name.lower().replace("'", "").replace(" ", "-")
    # No app_url: a section is no app, so its caption links nowhere (templates/admin/app_list.html).
    return {"name": name, "app_label": slug, "app_url": "", "has_module_perms": True, "models": models}


def superusers_only(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    attrs = {
        "__module__": admin_class.__module__,
        "__qualname__": admin_class.__qualname__,
        "__doc__": admin_class.__doc__,
    }
    return type(admin_class.__name__, (SuperuserOnly, admin_class), attrs)


def phi_safe(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """`admin_class` with PhiSafeAdmin in front: same name, same behaviour, searches and titles safe."""
    if issubclass(admin_class, PhiSafeAdmin):
        return admin_class
    attrs = {
        "__module__": admin_class.__module__,
        "__qualname__": admin_class.__qualname__,
        "__doc__": admin_class.__doc__,
    }
    return type(admin_class.__name__, (PhiSafeAdmin, admin_class), attrs)


class ClinicAdminConfig(AdminConfig):
    default_site = "backoffice.admin_site.ClinicAdminSite"
