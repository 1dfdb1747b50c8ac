"""Django admin for the core: staff, credentials, patients, stations, handoffs and their audit trail.

Admin is for catalogs and staff. Workflow state (a handoff's status, a station's state) is never
edited here: those fields are read-only and change only through backoffice.services, which the
station action below calls like any view would. Event rows are append-only and shown read-only.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pghistory.admin import EventModelAdmin, EventsAdmin

import backoffice.accounts.axes_admin  # noqa: F401 - django-axes' tables, usernames hashed
from backoffice import services
from backoffice.models import (
    Allergy,
    Credential,
    DrugClass,
    Equipment,
    ExamRoom,
    Handoff,
    HandoffEvent,
    Ingredient,
    Patient,
    RolePolicy,
    Station,
    StationEvent,
    User,
)
from backoffice.workflow import StationState, TransitionNotAllowed

# A credential this close to its expiry date is shown, and filterable, as due for renewal.
CREDENTIAL_WARNING_DAYS = 30


def acting_user(request: HttpRequest) -> User:
    """The staff member behind an admin request, typed for the services."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


class AccessLoggedAdmin(admin.ModelAdmin):
    """An admin of patient data, naming its pages in the access log.

    The site logs every page of every admin whose model leads to a patient (backoffice.admin_access,
    mixed in by backoffice.admin_site), whether or not it derives from this class; here an admin
    gives its pages a short name (`audit_what`, "admin <what> list" and so on) and the attribute path
    to the opaque id recorded with a single view (`audit_ref`, "" for none).
    """

    audit_what = ""
    audit_ref = "uuid"


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """A model shown in admin but never written there: audit rows, and records owned by services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Staff -------------------------------------------------------------------------------------


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    fields = ("kind", "number", "issued_on", "expires_on")


# The fields of a staff profile: what the Admin role keeps. Roles, flags, direct permissions and the
# password are a superuser's, and each change of them is in the account-change log (accounts.changes).
PROFILE_FIELDS = ("first_name", "last_name", "title", "email", "phone", "npi")
ACCESS_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


class StaffProfileCreationForm(forms.ModelForm):
    """A new account as the Admin role opens it: a profile, no role and no password.

    A superuser then gives the role and sets the password (or the person's first one), so the admin
    who typed the profile never knows a password that a role makes worth having.
    """

    class Meta:
        model = User
        fields = ("username", *PROFILE_FIELDS)

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
        return user


def is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": PROFILE_FIELDS}),
        ("Roles and access", {"fields": ("is_active", *ACCESS_FIELDS)}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        ("Personal info", {"classes": ("wide",), "fields": PROFILE_FIELDS}),
        ("Roles", {"classes": ("wide",), "fields": ("groups",)}),
    )
    # The Admin role's pages: a profile without the password, and roles shown but not edited.
    profile_fieldsets = (
        (None, {"fields": ("username",)}),
        ("Personal info", {"fields": PROFILE_FIELDS}),
        (
            "Roles and access",
            {
                "fields": ("is_active", "roles", "is_staff"),
                "description": "Roles, admin access and passwords are changed by a superuser; every such "
                "change is in the account-change log auditors read.",
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    profile_add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username",),
                "description": "The account starts without a role or a password: a superuser gives both.",
            },
        ),
        ("Personal info", {"classes": ("wide",), "fields": PROFILE_FIELDS}),
    )
    inlines = (CredentialInline,)
    list_display = ("username", "full_name", "title", "roles", "is_active")
    list_filter = ("groups", "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email", "title")
    ordering = ("last_name", "first_name", "username")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    @admin.display(description="roles")
    def roles(self, obj: User) -> str:
        # Sorted in Python so the prefetched groups are used as they are.
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "—"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if is_superuser(request):
            return super().get_fieldsets(request, obj)
        return self.profile_add_fieldsets if obj is None else self.profile_fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if not is_superuser(request):
            # A plain form of the profile's fields: neither the password nor the roles are in it.
            kwargs["form"] = StaffProfileCreationForm if obj is None else forms.ModelForm
            return admin.ModelAdmin.get_form(self, request, obj, change=change, **kwargs)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if not is_superuser(request):
            readonly += ("roles", "is_staff", "last_login", "date_joined")
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not a superuser's account (its password, its email), and not one's own: an admin who could
        # edit itself could rename its way out of a review or change what its colleagues check.
        if obj is not None and not is_superuser(request) and (obj.is_superuser or obj.pk == request.user.pk):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not is_superuser(request):
            return False  # staff leave by deactivation (backoffice.roles: no delete_user for admins)
        return super().has_delete_permission(request, obj)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Setting someone else's password is signing in as them: a superuser's, and logged as a reset.
        if not is_superuser(request):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)


class CredentialExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("expired", "Expired"),
            ("soon", f"Expiring within {CREDENTIAL_WARNING_DAYS} days"),
            ("renew", f"Expired or expiring within {CREDENTIAL_WARNING_DAYS} days"),
            ("current", f"Valid for more than {CREDENTIAL_WARNING_DAYS} days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = timezone.localdate()
        horizon = today + timedelta(days=CREDENTIAL_WARNING_DAYS)
        conditions = {
            "expired": Q(expires_on__lt=today),
            "soon": Q(expires_on__gte=today, expires_on__lte=horizon),
            "renew": Q(expires_on__lte=horizon),
            "current": Q(expires_on__gt=horizon),
        }
        value = self.value()
        if value in conditions:
            return queryset.filter(conditions[value])
        return queryset


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "number", "issued_on", "expires_on", "expiry")
    list_filter = (CredentialExpiryFilter, "kind")
    list_select_related = ("user",)
    search_fields = ("number", "user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)
    date_hierarchy = "expires_on"

    def _own(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and obj.user_id == request.user.pk and not is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # One's own credentials are checked by someone else, like the rest of one's own account.
        return not self._own(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._own(request, obj) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Credential, form: Any, change: bool) -> None:
        if self._own(request, obj):  # a new credential for oneself
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    @admin.display(description="status", ordering="expires_on")
    def expiry(self, obj: Credential) -> str:
        days = (obj.expires_on - timezone.localdate()).days
        if days < 0:
            return "Expired"
        if days == 0:
            return "Expires today"
        if days <= CREDENTIAL_WARNING_DAYS:
            return f"Expires in {days} day{'s' if days != 1 else ''}"
        return "Valid"


# --- Patients ----------------------------------------------------------------------------------


@admin.register(Patient)
class PatientAdmin(AccessLoggedAdmin):
    audit_what = "patient"
    list_display = ("mrn", "name", "date_of_birth", "sex", "preferred_language", "interpreter_needed")
    list_filter = ("sex", "interpreter_needed", "preferred_language")
    # An MRN is searched from its start, so a scanned wristband finds exactly its patient.
    search_fields = ("^mrn", "family_name", "given_name")
    # Allergies change on the patient's allergy page (backoffice.allergies), which keeps the summary.
    readonly_fields = (
        "uuid",
        "created_at",
        "allergies",
        "no_known_allergies",
        "allergies_reviewed_at",
        "allergies_reviewed_by",
    )
    fieldsets = (
        (None, {"fields": ("mrn", "family_name", "given_name", "date_of_birth", "sex")}),
        ("Language", {"fields": ("preferred_language", "interpreter_needed")}),
        (
            "Allergies",
            {"fields": ("allergies", "no_known_allergies", "allergies_reviewed_at", "allergies_reviewed_by")},
        ),
        ("Contact", {"fields": ("phone", "email", "address", "emergency_contact")}),
        ("Record", {"fields": ("uuid", "created_at")}),
    )

    @admin.display(description="name", ordering="family_name")
    def name(self, obj: Patient) -> str:
        return f"{obj.family_name}, {obj.given_name}"


@admin.register(Allergy)
class AllergyAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Patients' allergies, read-only: recorded and removed on the patient's allergy page, with history."""

    audit_what = "allergy"
    audit_ref = ""
    list_display = ("patient", "allergen", "kind", "reaction", "severity", "recorded_by", "recorded_at", "removed_at")
    list_filter = ("kind", "severity")
    list_select_related = ("patient", "recorded_by")
    search_fields = ("^patient__mrn", "patient__family_name", "allergen")


@admin.register(DrugClass)
class DrugClassAdmin(admin.ModelAdmin):
    list_display = ("name", "also_matches")
    search_fields = ("name", "also_matches")


@admin.register(Ingredient)
class IngredientAdmin(admin.ModelAdmin):
    list_display = ("name", "rxnorm_code")
    search_fields = ("name", "rxnorm_code")
    filter_horizontal = ("classes",)


# --- Rooms, stations, equipment ----------------------------------------------------------------


@admin.register(Equipment)
class EquipmentAdmin(admin.ModelAdmin):
    list_display = ("name", "code")
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}


@admin.register(RolePolicy)
class RolePolicyAdmin(admin.ModelAdmin):
    list_display = ("group", "require_second_factor")
    list_editable = ("require_second_factor",)
    list_select_related = ("group",)


@admin.register(ExamRoom)
class ExamRoomAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name",)


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "state", "is_active")
    list_filter = ("kind", "state", "is_active")
    search_fields = ("code", "name")
    filter_horizontal = ("equipment",)
    readonly_fields = ("state", "state_changed_at", "state_history")
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "is_active")}),
        ("Equipment", {"fields": ("equipment",)}),
        (
            "State",
            {
                "fields": ("state", "state_changed_at", "state_history"),
                "description": "A station's state changes only through the back-office pages "
                "or the “Mark turned over (ready)” action.",
            },
        ),
    )
    actions = ("mark_turned_over",)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm("backoffice.view_stationevent"):
            return fieldsets
        # State changes name the patients who were there: not the Admin role's (backoffice.roles).
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f != "state_history")})
            for name, options in fieldsets
        ]

    @admin.display(description="history")
    def state_history(self, obj: Station) -> SafeString | str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:backoffice_stationevent_changelist")
        return format_html('<a href="{}?station__id__exact={}">State changes of this station</a>', url, obj.pk)

    def has_manage_station_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("backoffice.manage_station")

    @admin.action(
        description="Mark turned over (ready)",
        permissions=["manage_station"],
        location=[admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM],
    )
    def mark_turned_over(self, request: HttpRequest, queryset: QuerySet[Station]) -> None:
        by = acting_user(request)
        turned_over: list[str] = []
        skipped: list[str] = []
        for station in queryset.order_by("name"):
            if station.state != StationState.NEEDS_TURNOVER:
                skipped.append(f"{station} ({station.get_state_display().lower()})")
                continue
            try:
                services.station_turnover(station=station, by=by)
            except TransitionNotAllowed as exc:
                # Someone else turned it over in the meantime, or the role doesn't allow it.
                self.message_user(request, f"{station}: {exc}", messages.ERROR)
            else:
                turned_over.append(str(station))
        if turned_over:
            self.message_user(request, f"Ready again: {', '.join(turned_over)}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"Not waiting for turnover, left as they are: {', '.join(skipped)}.", messages.WARNING
            )


@admin.register(StationEvent)
class StationEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    """Who arrived at and left each station: patient data, so its pages name the patients in the access log."""

    audit_what = "station event"
    audit_ref = ""
    list_display = ("at", "station", "action", "patient", "from_status", "to_status", "actor", "note")
    list_filter = ("action", "to_status", "station")
    list_select_related = ("station", "actor", "patient")
    search_fields = ("station__code", "station__name", "^patient__mrn", "patient__family_name", "note")
    date_hierarchy = "at"


# --- Handoffs ----------------------------------------------------------------------------------


class HandoffEventInline(admin.TabularInline):
    """The handoff's audit trail, oldest first; append-only, so shown read-only."""

    model = HandoffEvent
    fields = ("at", "action", "from_status", "to_status", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[HandoffEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# What admin may correct on a placed handoff. The order itself (patient, clinician, room) is fixed once
# placed: identity is verified and items are ordered against that patient.
HANDOFF_EDITABLE_FIELDS = (
    "priority",
    "clinical_note",
    "interpreter_needed",
    "interpreter_language",
    "companion",
    "aide_needed",
    "mobility",
    "isolation",
)


class HandoffAdminForm(forms.ModelForm):
    """Optimistic locking: a save is refused if the handoff changed since the form was opened."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Handoff
        fields = HANDOFF_EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expected_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        expected = cleaned.get("expected_version")
        if self.instance.pk is not None and expected is not None:
            # Admin wraps a POST in a transaction, so the row stays locked until save_model has written.
            with transaction.atomic():
                current = (
                    Handoff.objects.select_for_update()
                    .filter(pk=self.instance.pk)
                    .values_list("version", flat=True)
                    .first()
                )
            if current != expected:
                raise ValidationError(
                    "Someone changed this handoff after you opened it. Reload the page to see their change, "
                    "then make yours again.",
                    code="stale",
                )
        return cleaned


# Written only by backoffice.services; admin shows them and never saves them.
HANDOFF_WORKFLOW_FIELDS = (
    "status",
    "station",
    "claimed_by",
    "claimed_at",
    "identity_verified_at",
    "identity_verified_by",
    "identity_method",
    "closed_at",
    "cancel_reason",
    "version",
)


@admin.register(Handoff)
class HandoffAdmin(AccessLoggedAdmin):
    audit_what = "handoff"
    form = HandoffAdminForm
    list_display = ("patient", "priority", "status", "station", "claimed_by", "created_at")
    list_filter = ("status", "priority", "station", "isolation")
    list_select_related = ("patient", "station", "claimed_by")
    search_fields = ("^patient__mrn", "patient__family_name", "patient__given_name")
    date_hierarchy = "created_at"
    readonly_fields = (
        "uuid",
        "patient",
        "ordering_clinician",
        "exam_room",
        "created_at",
        "created_by",
        *HANDOFF_WORKFLOW_FIELDS,
    )
    fieldsets = (
        (None, {"fields": ("patient", "ordering_clinician", "exam_room", "priority", "clinical_note")}),
        (
            "Patient needs",
            {
                "fields": (
                    "interpreter_needed",
                    "interpreter_language",
                    "companion",
                    "aide_needed",
                    "mobility",
                    "isolation",
                )
            },
        ),
        (
            "Workflow",
            {
                "fields": (
                    ("status", "station"),
                    ("claimed_by", "claimed_at"),
                    ("identity_verified_by", "identity_verified_at", "identity_method"),
                    ("closed_at", "cancel_reason"),
                ),
                "description": "Changed only through the back-office pages.",
            },
        ),
        ("Record", {"fields": ("uuid", ("created_by", "created_at"), "version", "expected_version")}),
    )
    inlines = (HandoffEventInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Handoff]:
        return (
            super()
            .get_queryset(request)
            .select_related("patient", "station", "claimed_by", "ordering_clinician", "exam_room")
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # View-only: there is nothing to save, so no version to carry.
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f != "expected_version")})
            for name, options in fieldsets
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Handoffs are placed from the app's new-handoff page, through services.handoff_create.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Handoff, form: Any, change: bool) -> None:
        # Write only what the form changed, so a status a service wrote meanwhile is never overwritten,
        # and bump the version so editors elsewhere see their copy is stale.
        model_fields = {field.name for field in Handoff._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in model_fields]
        if not changed:
            return
        obj.version = form.cleaned_data["expected_version"] + 1
        obj.save(update_fields=[*changed, "version"])


@admin.register(HandoffEvent)
class HandoffEventAdmin(AccessLoggedAdmin, ReadOnlyModelAdmin):
    audit_what = "handoff event"
    audit_ref = "handoff.uuid"
    list_display = ("at", "handoff", "action", "from_status", "to_status", "actor", "note")
    list_filter = ("action", "to_status")
    list_select_related = ("handoff__patient", "actor")
    search_fields = ("^handoff__patient__mrn", "handoff__patient__family_name", "handoff__patient__given_name", "note")
    date_hierarchy = "at"


# --- History -----------------------------------------------------------------------------------


class HistoryEventsAdmin(AccessLoggedAdmin, EventsAdmin):
    """pghistory's events across the tracked models: each change with its diff, who made it and where.

    Installed with PGHISTORY_ADMIN_CLASS; the "Events" link on a tracked record's change page opens it
    filtered to that record. Every clinical record's changes are patient data: its pages log the patients
    of the records listed and of the one filtered to (backoffice.admin_access).
    """

    audit_what = "history"
    audit_ref = ""

    def get_list_display(self, request: HttpRequest) -> Any:
        return ("pgh_created_at", "pgh_obj_model", "pgh_obj_id", "pgh_label", "pgh_diff", "user", "url")


class HistoryAdmin(EventModelAdmin):
    """One tracked model's snapshots, newest first, with who saved each and on which page.

    Reached from the record's change page ("… histories"). Read-only like every event admin.
    """

    list_display = ("pgh_created_at", "pgh_label", "pgh_obj", "changed_by", "via")
    list_select_related = ("pgh_obj",)
    ordering = ("-pgh_created_at", "-pgh_id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The context holds the user's id; one correlated subquery names them for the whole page.
        user_id = Cast(KeyTextTransform("user", "pgh_context__metadata"), BigIntegerField())
        username = User.objects.filter(pk=OuterRef("_pgh_user_id")).values("username")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(_pgh_user_id=user_id, _pgh_url=KeyTextTransform("url", "pgh_context__metadata"))
            .annotate(_pgh_username=Subquery(username))
        )

    @admin.display(description="changed by")
    def changed_by(self, obj: Any) -> str:
        return obj._pgh_username or "—"

    @admin.display(description="on page")
    def via(self, obj: Any) -> str:
        return obj._pgh_url or "— (not through a page)"


@admin.register(apps.get_model("backoffice", "PatientHistory"))
class PatientHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "patient history"
    audit_ref = ""


@admin.register(apps.get_model("backoffice", "HandoffHistory"))
class HandoffHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "handoff history"
    audit_ref = ""


@admin.register(apps.get_model("backoffice", "StationHistory"))
class StationHistoryAdmin(HistoryAdmin):
    pass


@admin.register(apps.get_model("backoffice", "CredentialHistory"))
class CredentialHistoryAdmin(HistoryAdmin):
    pass


@admin.register(apps.get_model("backoffice", "AllergyHistory"))
class AllergyHistoryAdmin(AccessLoggedAdmin, HistoryAdmin):
    audit_what = "allergy history"
    audit_ref = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The access log names each row's patient: join the way there instead of a query per row.
        return super().get_queryset(request).select_related("patient")
