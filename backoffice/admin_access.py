"""Every admin page that shows a patient's data writes an access row naming the patients it showed.

``AccessLoggedPages`` is mixed into every ModelAdmin by ``backoffice.admin_site.ClinicAdminSite``
(through ``PhiSafeAdmin``), whoever registered it, so no admin page of patient data can be added that
forgets the log. Which rows are a patient's is read from the models (``backoffice.audit.patients``):
a model with a chain of foreign keys to ``Patient`` is patient data, a catalog without one is not.

- a list (``admin <what> list``): the patients of the rows on the page, read from the rows the page
  shows (no query when its ``list_select_related`` reaches the patient, one otherwise);
- a change page and a history page (``admin <what>``, ``admin <what> history``): the record's patient;
- a delete confirmation, and "delete selected"'s (``admin <what> delete``): the patients of the
  record and of every record the page lists as deleted with it or protecting it (deleting a
  clinician's account lists the handoffs they ordered, each naming its patient);
- pghistory's pages (the events across models, and each model's snapshots): the patients of the
  records whose changes are listed, and of the record the page is filtered to (its heading names it).

An admin class may name its page (``audit_what``, default the model's verbose name) and the record's
opaque id recorded with a single view (``audit_ref``, a dotted attribute path, default ``uuid``).
The row is written before the response is returned, which is before the template renders.
"""

from collections.abc import Sequence
from typing import Any, cast

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import EMPTY_VALUE_STRING
from django.contrib.admin.utils import NestedObjects, display_for_value, quote
from django.db import models, router
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from backoffice.audit.patients import has_patient, patients_of, patients_of_rows

# Where get_deleted_objects leaves what a delete confirmation lists, for the view that renders it.
_LISTED_FOR_DELETION = "_admin_listed_for_deletion"


def _follow(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def _event_refs(rows: list[Any]) -> list[tuple[type[models.Model], Any]]:
    """(tracked model, pk) of each pghistory event row: the record whose change it is."""
    refs = []
    for row in rows:
        label, pk = getattr(row, "pgh_obj_model", None), getattr(row, "pgh_obj_id", None)
        if not label or pk is None:
            continue
        try:
            refs.append((apps.get_model(label), pk))
        except LookupError:  # a model since removed: nothing of it is left to name a patient
            continue
    return refs


def _filtered_to(request: HttpRequest) -> list[tuple[type[models.Model], Any]]:
    """pghistory's ``?obj=app.Model:pk``: the record an events page is filtered to, named in its heading."""
    value = request.GET.get("obj", "")
    label, _, pk = value.partition(":")
    if not pk:
        return []
    try:
        return [(apps.get_model(label), pk)]
    except (LookupError, ValueError):
        return []


class AccessLoggedPages(admin.ModelAdmin):
    """Access rows for admin's lists, change, history and delete-confirmation pages of patient data."""

    # No class attributes named audit_*: this class comes first in the site's classes (admin_site.phi_safe),
    # so one here would hide the admin class's own.

    def _audit_what(self) -> str:
        return getattr(self, "audit_what", "") or str(self.opts.verbose_name)

    def _is_event_admin(self) -> bool:
        """pghistory's admins: the events across models, or one model's snapshots."""
        from pghistory.admin.core import BaseEventAdmin  # pghistory's admin loads models: not at import time

        return isinstance(self, BaseEventAdmin)

    def _is_events_across_models(self) -> bool:
        """pghistory's events of every tracked model: each row names its record by model and id."""
        return any(field.name == "pgh_obj_model" for field in self.model._meta.get_fields())

    def shows_patients(self) -> bool:
        """Whether this admin's pages show patients' data: its model leads to a patient, or it lists every model's changes."""
        return has_patient(self.model) or self._is_events_across_models()

    def patients_shown(self, request: HttpRequest, rows: list[Any]) -> list[int]:
        """The patients of these rows of the page (for pghistory's events: of the records they track)."""
        if self._is_events_across_models():
            return patients_of(_event_refs(rows))
        return patients_of_rows(self.model, rows)

    def _log(
        self,
        request: HttpRequest,
        *,
        listing: bool,
        what: str,
        rows: list[Any],
        extra: Sequence[int] = (),
        ref: str = "",
    ) -> None:
        # The site's module is imported while the apps load (ClinicAdminConfig), before any model.
        from backoffice.audit.log import log_access
        from backoffice.models import AccessAction

        log_access(
            request=request,
            action=AccessAction.LIST if listing else AccessAction.VIEW,
            what=f"admin {what}",
            patients=[*self.patients_shown(request, rows), *extra],
            object_ref=ref,
        )

    def _ref(self, obj: Any) -> str:
        path = getattr(self, "audit_ref", "uuid")
        return str((_follow(obj, path) if path else "") or "")

    @staticmethod
    def _context(response: HttpResponse) -> dict[str, Any]:
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            return dict(response.context_data)
        return {}

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = self._context(response)
        changelist = context.get("cl")
        if changelist is not None and self.shows_patients():
            # The page's rows, fetched here once; the template reuses the same evaluated queryset.
            rows = list(changelist.result_list)
            subject = patients_of(_filtered_to(request)) if self._is_event_admin() else []
            self._log(request, listing=True, what=f"{self._audit_what()} list", rows=rows, extra=subject)
        elif "deletable_objects" in context:  # "delete selected"'s confirmation
            self._log_deletion_listed(request, rows=list(context.get("queryset") or []))
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # A rendered form (not the redirect after a save, which shows nothing) shows the record.
        original = self._context(response).get("original")
        if original is not None and self.shows_patients():
            self._log(request, listing=False, what=self._audit_what(), rows=[original], ref=self._ref(original))
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        obj = self._context(response).get("object")
        if obj is not None and self.shows_patients():
            what = f"{self._audit_what()} history"
            self._log(request, listing=False, what=what, rows=[obj], ref=self._ref(obj))
        return response

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().delete_view(request, object_id, extra_context)
        obj = self._context(response).get("object")
        if obj is not None:  # the confirmation was shown (a confirmed delete redirects)
            self._log_deletion_listed(request, rows=[obj], ref=self._ref(obj))
        return response

    def _log_deletion_listed(self, request: HttpRequest, *, rows: list[Any], ref: str = "") -> None:
        listed: list[models.Model] = getattr(request, _LISTED_FOR_DELETION, [])
        patients = patients_of([(type(item), item.pk) for item in listed])
        if not patients and not self.shows_patients():
            return  # a catalog entry whose deletion touches no patient's record
        what = f"{self._audit_what()} delete"
        self._log(request, listing=False, what=what, rows=rows, extra=patients, ref=ref)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """Django's own (django.contrib.admin.utils.get_deleted_objects), keeping what it lists.

        The same collector and the same formatting; the collected and protected records are kept on
        the request for the page that lists them to log their patients.
        """
        try:
            first = objs[0]
        except IndexError:
            return [], {}, set(), []
        collector = NestedObjects(using=router.db_for_write(first._meta.model), origin=objs)
        collector.collect(objs)
        perms_needed: set[str] = set()
        site = self.admin_site

        def format_callback(obj: models.Model) -> Any:
            opts = obj._meta
            no_edit_link = f"{capfirst(opts.verbose_name)}: {obj}"
            if not site.is_registered(type(obj)):
                return no_edit_link
            if not site.get_model_admin(type(obj)).has_delete_permission(request, obj):
                perms_needed.add(str(opts.verbose_name))
            try:
                url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change", None, (quote(obj.pk),))
            except NoReverseMatch:
                return no_edit_link
            shown = display_for_value(str(obj), EMPTY_VALUE_STRING)
            return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, shown)

        to_delete = collector.nested(format_callback)
        protected = [format_callback(obj) for obj in collector.protected]
        model_objs = cast(dict[type[models.Model], set[models.Model]], collector.model_objs)
        model_count = {str(model._meta.verbose_name_plural): len(found) for model, found in model_objs.items()}
        # What the confirmation lists (admin/delete_confirmation.html): the kinds the user may not delete
        # (names only), else the records protecting it, else everything that would go with it.
        if perms_needed:
            listed: list[models.Model] = []
        elif collector.protected:
            listed = list(collector.protected)
        else:
            listed = [obj for found in model_objs.values() for obj in found]
        setattr(request, _LISTED_FOR_DELETION, listed)
        return to_delete, model_count, perms_needed, protected
