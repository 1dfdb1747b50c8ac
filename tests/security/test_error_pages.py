"""Friendly 403/404/500 pages that leak nothing: no stack trace, no settings, no paths."""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from backoffice.models import User

pytestmark = pytest.mark.django_db

LEAKS = ("Traceback", "SECRET_KEY", "DATABASE", "django.core", "site-packages", 'File "', "Request Method", "settings")


def _assert_friendly(content: str) -> None:
    for leak in LEAKS:
        assert leak not in content, leak


def test_404_for_an_unknown_url_is_friendly(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    response = client.get("/no-such-page/at-all/")
    assert response.status_code == 404
    content = response.content.decode()
    assert "Nothing here" in content
    _assert_friendly(content)
    assert "urlpatterns" not in content  # not Django's technical 404


def test_404_for_an_unknown_record_is_friendly(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    response = client.get(reverse("handoff_detail", args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
    _assert_friendly(response.content.decode())


def test_403_is_friendly(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    response = client.get(reverse("board"))
    assert response.status_code == 403
    content = response.content.decode()
    assert any(t.name == "403.html" for t in response.templates)
    assert "You don't have access to this page" in content.replace("&#x27;", "'")
    _assert_friendly(content)


def test_500_is_friendly() -> None:
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    content = response.content.decode()
    assert "Something went wrong on our side" in content
    _assert_friendly(content)
