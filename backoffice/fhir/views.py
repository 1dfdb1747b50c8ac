"""The FHIR API's answers: read, search (GET with opaque parameters, POST _search with any), metadata.

Every request needs an API client's bearer token (backoffice.fhir.auth); a session of the pages does
not open the API, so these views are exempt from the pages' login, CSRF and session clocks. Reads
and searches of patient data write an access row, as the owner of the client, naming the patients
returned, before the answer is sent.
"""

import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.bundle import Bundle

from backoffice.accounts.auth import session_passive
from backoffice.audit.log import log_access
from backoffice.fhir import auth, builders, search
from backoffice.fhir.capability import capability_statement
from backoffice.fhir.models import ApiClient, StoredSearch
from backoffice.fhir.outcomes import FhirError, bad_request, not_found, outcome
from backoffice.models import AccessAction, AccessOutcome

FHIR_JSON = "application/fhir+json"
# How long a search's paging links keep working.
PAGE_LINK_LIFETIME = timedelta(minutes=30)


def fhir_response(data: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder), status=status, content_type=f"{FHIR_JSON}; charset=utf-8"
    )
    # Patient data: never kept by a cache between the client and us.
    response["Cache-Control"] = "no-store, private"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: FhirError, headers: dict[str, str] | None = None) -> HttpResponse:
    return fhir_response(outcome(code=error.code, message=error.message), status=error.status, headers=headers)


ApiView = Callable[..., HttpResponse]


def api(*methods: str) -> Callable[[ApiView], ApiView]:
    """The token check, then the method check, then the view, with errors as OperationOutcome."""

    def decorator(view: ApiView) -> ApiView:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                client = auth.authenticate(request)
            except auth.Unauthenticated as exc:
                challenge = 'Bearer realm="fhir"'
                if request.headers.get("Authorization"):
                    challenge += ', error="invalid_token"'
                return error_response(FhirError(401, "login", str(exc)), {"WWW-Authenticate": challenge})
            if request.method not in methods:
                error = FhirError(
                    405, "not-supported", f"{request.method} is not supported here; this API is read-only."
                )
                return error_response(error, {"Allow": ", ".join(methods)})
            try:
                return view(request, client, *args, **kwargs)
            except FhirError as error:
                return error_response(error)

        return csrf_exempt(login_not_required(session_passive(wrapped)))

    return decorator


def _type(client: ApiClient, name: str) -> search.ResourceType:
    rtype = search.TYPES.get(name)
    if rtype is None:
        raise not_found(f"Unknown resource type {name!r}.")
    if not client.may_read(name):
        raise FhirError(403, "forbidden", f"This client has no {name}.read scope.")
    return rtype


def _what(rtype: search.ResourceType, interaction: str, client: ApiClient) -> str:
    return f"FHIR {rtype.name} {interaction} via API client {client.name}"


@api("GET")
def metadata(request: HttpRequest, client: ApiClient) -> HttpResponse:
    base = request.build_absolute_uri("/fhir/")
    return fhir_response(builders.as_json(capability_statement(base_url=base)))


@api("GET")
def read(request: HttpRequest, client: ApiClient, resource_type: str, resource_id: str) -> HttpResponse:
    rtype = _type(client, resource_type)
    found = search.read(rtype, resource_id)
    if found is None:
        if rtype.patient_data:
            log_access(
                request=request,
                user=client.owner,
                action=AccessAction.DENIED,
                what=_what(rtype, "read", client),
                patients=[],
                object_ref=resource_id,
                outcome=AccessOutcome.NOT_FOUND,
            )
        raise not_found(f"No {resource_type} {resource_id}.")
    resource, patient_id = found
    if rtype.patient_data:
        log_access(
            request=request,
            user=client.owner,
            action=AccessAction.VIEW,
            what=_what(rtype, "read", client),
            patients=[patient_id] if patient_id is not None else [],
            object_ref=resource_id,
        )
    return fhir_response(builders.as_json(resource))


def _lists(query: QueryDict) -> dict[str, list[str]]:
    return {name: query.getlist(name) for name in query}


@api("GET")
def search_get(request: HttpRequest, client: ApiClient, resource_type: str) -> HttpResponse:
    """GET <type>?...: opaque ids, codes, statuses and dates only; or a page of an earlier search."""
    rtype = _type(client, resource_type)
    params = _lists(request.GET)
    named = sorted(name for name in params if name.split(":")[0] in search.POST_ONLY_PARAMS)
    if named:
        raise bad_request(
            f"{', '.join(named)} may name a patient and is never taken in a URL: "
            f"search with POST {resource_type}/_search (form-encoded) instead."
        )
    return _search(request, client, rtype, params)


@api("POST")
def search_post(request: HttpRequest, client: ApiClient, resource_type: str) -> HttpResponse:
    rtype = _type(client, resource_type)
    if request.content_type != "application/x-www-form-urlencoded":
        raise bad_request("POST _search takes form-encoded parameters (application/x-www-form-urlencoded).")
    if request.GET:
        raise bad_request("POST _search takes its parameters in the body, not the URL.")
    return _search(request, client, rtype, _lists(request.POST))


def _stored(client: ApiClient, rtype: search.ResourceType, params: dict[str, list[str]]) -> StoredSearch:
    """The search a paging link names (``_page``), or a new one kept for this search's links."""
    if "_page" in params:
        extra = sorted(set(params) - search.CONTROL_PARAMS)
        if extra:
            raise bad_request(f"A page link takes only _page, _offset and _count, not {', '.join(extra)}.")
        token = params["_page"][-1]
        stored = StoredSearch.objects.filter(
            token=token, client=client, resource_type=rtype.name, expires_at__gt=timezone.now()
        ).first()
        if stored is None:
            raise not_found("That page link has expired or is not this client's: search again.")
        return stored
    filters = {name: values for name, values in params.items() if name not in search.CONTROL_PARAMS}
    search.parse(rtype, filters)  # refuse bad parameters before anything is kept
    StoredSearch.objects.filter(expires_at__lte=timezone.now()).delete()
    return StoredSearch.objects.create(
        token=secrets.token_urlsafe(24),
        client=client,
        resource_type=rtype.name,
        params=filters,
        expires_at=timezone.now() + PAGE_LINK_LIFETIME,
    )


def _search(
    request: HttpRequest, client: ApiClient, rtype: search.ResourceType, params: dict[str, list[str]]
) -> HttpResponse:
    count = search.page_size(params)
    raw_offset = params.get("_offset", ["0"])[-1]
    if not raw_offset.isdigit():
        raise bad_request("_offset is a whole number.")
    offset = int(raw_offset)
    stored = _stored(client, rtype, params)
    found = search.search(rtype, stored.params, offset=offset, count=count)
    if rtype.patient_data:
        log_access(
            request=request,
            user=client.owner,
            action=AccessAction.SEARCH,
            what=_what(rtype, "search", client),
            patients=found.patient_ids,
        )
    base = request.build_absolute_uri(f"/fhir/{rtype.name}")

    def link(relation: str, at: int) -> dict[str, str]:
        return {
            "relation": relation,
            "url": f"{base}?{urlencode({'_page': stored.token, '_offset': str(at), '_count': str(count)})}",
        }

    links = [link("self", offset)]
    if offset + count < found.total:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    bundle = Bundle.model_validate(
        {
            "type": "searchset",
            "total": found.total,
            "link": links,
            "entry": [
                {"fullUrl": f"{base}/{resource.id}", "resource": resource, "search": {"mode": "match"}}
                for resource in found.resources
            ],
        }
    )
    return fhir_response(builders.as_json(bundle))
