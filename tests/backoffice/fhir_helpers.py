"""API clients and requests for the FHIR API tests."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.test import Client
from django.utils import timezone

from backoffice.fhir.auth import client_token_issue
from backoffice.fhir.models import SCOPES, ApiClient
from backoffice.models import User


def api_client(
    owner: User, *, scopes: list[str] | None = None, name: str = "Clinic EHR", **fields: Any
) -> tuple[ApiClient, str]:
    """A client with every read scope (unless told) valid for a day, and its token."""
    client = ApiClient(
        name=name,
        owner=owner,
        scopes=list(SCOPES) if scopes is None else scopes,
        expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=1)),
        **fields,
    )
    return client, client_token_issue(client=client)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def get(token: str, url: str, **params: Any) -> Any:
    return Client().get(url, params, **bearer(token))


FORM = "application/x-www-form-urlencoded"


def post_search(token: str, resource_type: str, *, client: Client | None = None, **params: Any) -> Any:
    """POST <type>/_search, its parameters form-encoded as FHIR asks."""
    body = urlencode(params, doseq=True)
    return (client or Client()).post(f"/fhir/{resource_type}/_search", body, content_type=FORM, **bearer(token))
