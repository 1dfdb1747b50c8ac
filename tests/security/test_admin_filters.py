"""Bad filter, search and paging values on every admin list answer 400 (or Django's own "?e=1"
redirect), never 500: a mistyped or hostile URL is the visitor's error, not the server's."""

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.options import ModelAdmin
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from backoffice.models import User

pytestmark = pytest.mark.django_db

GENERIC: list[dict[str, str]] = [
    {"q": "Gutierrez\x00"},
    {"p": "abc"},
    {"p": "-1"},
    {"p": "99999"},
    {"o": "abc.-x.7"},
    {"id": "abc"},
    {"id__gt": "99999999999999999999999"},
    {"pk__in": "1,x"},
    {"no_such_field": "1"},
    {"id__no_such_lookup": "1"},
    {"_to_field": "password"},
]


def filter_params(model_admin: ModelAdmin[Any]) -> list[dict[str, str]]:
    params: list[dict[str, str]] = []
    for spec in model_admin.list_filter:
        if isinstance(spec, str):
            name = spec
        elif isinstance(spec, tuple | list):
            name = spec[0]
        else:
            name = getattr(spec, "parameter_name", "") or ""
        if not name:
            continue
        params += [
            {name: "\x00"},
            {name: "not-a-value"},
            {f"{name}__exact": "not-a-value"},
            {f"{name}__gte": "2026-13-45"},
            {f"{name}__isnull": "maybe"},
            {f"{name}__in": "1,x"},
            {f"{name}__id__exact": "x"},
        ]
    return params


def changelists() -> list[tuple[type[Model], ModelAdmin[Any]]]:
    return list(admin.site._registry.items())


@pytest.mark.parametrize(("model", "model_admin"), changelists(), ids=lambda v: getattr(v, "__name__", ""))
def test_bad_values_on_an_admin_list_are_never_a_server_error(
    client: Client,
    settings: Any,
    django_user_model: type[User],
    model: type[Model],
    model_admin: ModelAdmin[Any],
) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False  # the second factor has its own tests; this is the lists
    client.force_login(django_user_model.objects.create_superuser("root", "root@clinic.test", "x-horse-battery-9"))
    client.raise_request_exception = False
    path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(path).status_code == 200  # the list itself opens: what follows reaches it
    bad = []
    for params in GENERIC + filter_params(model_admin):
        response = client.get(path, params)
        if response.status_code not in (200, 302, 400):
            bad.append((params, response.status_code))
    assert bad == []


def test_a_nul_in_any_query_string_is_a_400_that_says_so(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    response = client.get(reverse("queue"), {"mine": "1\x00"})
    assert response.status_code == 400
    assert "That address can't be read" in response.content.decode()
    assert client.get(reverse("queue"), {"mine": "1"}).status_code == 200


@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_ACCEPT_LANGUAGE", "HTTP_X_FORWARDED_FOR"])
def test_a_nul_in_a_header_is_a_400_before_anything_stores_it(client: Client, header: str) -> None:
    """The sign-in page stores the browser's User-Agent (django-axes) and the access log its address."""
    from axes.models import AccessAttempt

    client.raise_request_exception = False
    extra = {header: "Mozilla/5.0\x00<script>"}
    signin = client.post(reverse("login"), {"username": "nobody", "password": "wrong"}, **extra)  # type: ignore[arg-type]
    assert signin.status_code == 400
    assert "That address can't be read" in signin.content.decode()
    assert not AccessAttempt.objects.exists()
    assert client.get(reverse("login"), **extra).status_code == 400  # type: ignore[arg-type]
    assert client.get(reverse("login"), HTTP_USER_AGENT="Mozilla/5.0").status_code == 200
