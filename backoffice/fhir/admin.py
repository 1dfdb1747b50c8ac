"""API clients in admin (superusers only: backoffice.admin_site's Internals): the token is shown once."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from backoffice.fhir.auth import client_token_issue
from backoffice.fhir.models import SCOPES, ApiClient


class ApiClientForm(forms.ModelForm[ApiClient]):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The resource types it may read.",
    )

    class Meta:
        model = ApiClient
        fields = ["name", "owner", "scopes", "expires_at", "revoked"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin[ApiClient]):
    form = ApiClientForm
    list_display = ("name", "owner", "token_prefix", "expires_at", "revoked", "last_used_at")
    list_filter = ("revoked",)
    readonly_fields = ("token_prefix", "created_at", "last_used_at")
    actions = ["issue_new_token"]

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            # Saved with its first token; response_add shows it.
            request._issued_token = client_token_issue(client=obj)  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None) -> HttpResponse:
        # Rendered, not put in a message: messages travel in a cookie, and the token must not.
        return self._shown_once(request, obj, request._issued_token)  # type: ignore[attr-defined]

    @admin.action(description="Issue a new token (the old one stops working)")
    def issue_new_token(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> HttpResponse | None:
        clients = list(queryset[:2])
        if len(clients) != 1:
            self.message_user(request, "Choose one API client: its new token is shown once.", messages.ERROR)
            return None
        [client] = clients
        return self._shown_once(request, client, client_token_issue(client=client))

    def _shown_once(self, request: HttpRequest, client: ApiClient, token: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"Token for {client.name}",
            "client": client,
            "token": token,
            "base_url": request.build_absolute_uri("/fhir/"),
            "changelist_url": reverse("admin:fhir_apiclient_changelist"),
        }
        response = TemplateResponse(request, "admin/fhir/token_issued.html", context)
        response["Cache-Control"] = "no-store"
        return response
