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
"""

from typing import Any

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


class ClinicAdminSite(admin.AdminSite):
    def register(
        self,
        model_or_iterable: ModelBase | Any,
        admin_class: type[admin.ModelAdmin] | None = None,
        **options: Any,
    ) -> None:
        super().register(model_or_iterable, phi_safe(admin_class or admin.ModelAdmin), **options)


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
