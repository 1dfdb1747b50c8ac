"""Bearer tokens of API clients: issued once, stored as a SHA-256, checked on every request.

A token reads ``cbo_<prefix>_<secret>``: the prefix finds the client's row, the secret (32 random
bytes) is what the hash proves. The pages' sessions never open the API: only this header does.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone

from backoffice.fhir.models import ApiClient

TOKEN_START = "cbo_"  # noqa: S105 - the tokens' visible start, no secret


class Unauthenticated(Exception):
    """No usable token: answered 401 with a WWW-Authenticate header."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    prefix: str
    token: str


def new_token() -> IssuedToken:
    prefix = secrets.token_hex(6)
    return IssuedToken(prefix=prefix, token=f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}")


def client_token_issue(*, client: ApiClient) -> str:
    """Give the client a new token, replacing any it had, and return it: the only time it is seen."""
    issued = new_token()
    client.token_prefix, client.token_hash = issued.prefix, _digest(issued.token)
    if client.pk is None:
        client.save()
    else:
        client.save(update_fields=["token_prefix", "token_hash"])
    return issued.token


def authenticate(request: HttpRequest) -> ApiClient:
    """The API client whose bearer token the request carries; Unauthenticated if none may read.

    One query (the client and its owner); a second records when it was last used.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_START):
        raise Unauthenticated("A bearer token is required.")
    prefix = token[len(TOKEN_START) :].split("_", 1)[0]
    client = ApiClient.objects.select_related("owner").filter(token_prefix=prefix).first()
    if client is None or not hmac.compare_digest(client.token_hash, _digest(token)):
        raise Unauthenticated("The token is not valid.")
    now = timezone.now()
    if client.revoked:
        raise Unauthenticated("The token was revoked.")
    if client.expires_at <= now:
        raise Unauthenticated("The token has expired.")
    if not client.owner.is_active:
        raise Unauthenticated("The token's owner can no longer sign in.")
    ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client
