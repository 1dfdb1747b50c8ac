"""Friendly 403/404/500/503 pages that leak nothing: no stack trace, no settings, no paths."""

from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.db.backends.base.base import BaseDatabaseWrapper
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


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_outage_is_a_503_to_retry_not_a_500(client: Client, medical_assistant: User, error: type) -> None:
    client.force_login(medical_assistant)
    client.raise_request_exception = False
    refused = error('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
    # Every query fails, from the session's read on: the database is away, not a query of ours wrong.
    with mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=refused):
        page = client.get(reverse("queue"))
        health = client.get("/healthz")
    assert (page.status_code, page["Retry-After"], page["Cache-Control"]) == (503, "30", "no-store")
    content = page.content.decode()
    assert "can't reach its database right now" in content and "Nothing you entered was half-saved" in content
    _assert_friendly(content)
    assert "5432" not in content and "Connection refused" not in content
    assert (health.status_code, health["Content-Type"], health.content) == (503, "text/plain", b"database unavailable")
    assert health["Retry-After"] == "30"


def test_a_bug_is_still_a_500_not_an_outage(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    client.raise_request_exception = False
    with mock.patch("backoffice.pages.views.render", side_effect=ProgrammingError("column x does not exist")):
        response = client.get(reverse("queue"))
    assert response.status_code == 500 and "Retry-After" not in response
    assert "Something went wrong on our side" in response.content.decode()
