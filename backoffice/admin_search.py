"""Admin searches without the search in the URL: no patient's name or MRN in browser history or logs.

Django admin searches a list by GET (``/admin/backoffice/patient/?q=Gutierrez``), so what was typed
lands in the browser's history on a shared workstation and in every log that records URLs. Here the
search box posts instead (``templates/admin/search_form.html``), and the list it redirects to carries
an opaque token (``?_s=…``) in place of ``q``: the term, encrypted (AES-GCM) with a key derived from
``SECRET_KEY`` and bound to the signed-in session. Nothing is stored on the server, so the session
table holds no search either; the token means nothing once that session has ended, and nothing
without the key. Sorting, filters, paging and the "back to the list" of a change form keep the token
as they kept ``q``, so every admin list searches as before.

``PostedSearchAdmin`` does it for one ModelAdmin; ``backoffice.admin_site.ClinicAdminSite`` mixes it
into every ModelAdmin registered on the admin site, Django's own and the packages' included.
"""

import base64
import binascii
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.contrib import admin, messages
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, SEARCH_VAR, ChangeList
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.utils.crypto import salted_hmac

# The query-string parameter holding the encrypted search term, and the field a posted search sends.
SEALED_VAR = "_s"
POSTED_VAR = "_search"
# Longer searches are refused with a message (no real search is this long; it keeps URLs short).
MAX_TERM_LENGTH = 200
# The term is padded to a multiple of this, so a token's length hardly tells a name's length.
_BLOCK = 32
_NONCE_BYTES = 12


def _key() -> bytes:
    # 32 bytes (AES-256), derived from SECRET_KEY for this one purpose.
    return salted_hmac("backoffice.admin_search", "search-token", algorithm="sha256").digest()


def _bound_to(request: HttpRequest) -> bytes:
    """What a token is tied to: this sign-in's session (a new session id at sign-in and second factor)."""
    return (request.session.session_key or "").encode()


def search_token(request: HttpRequest, term: str) -> str:
    """The opaque token standing for `term` in this session's admin URLs."""
    data = term.encode()
    data += b"\0" * (-len(data) % _BLOCK)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(_key()).encrypt(nonce, data, _bound_to(request))
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def search_term(request: HttpRequest, token: str) -> str | None:
    """The term a token stands for, or None when it isn't one of this session's (or was altered)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = AESGCM(_key()).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound_to(request))
        return data.rstrip(b"\0").decode()
    except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
        return None


def searched_term(request: HttpRequest) -> str:
    """The search the list's URL stands for ("" for none or a token that isn't valid here)."""
    token = request.GET.get(SEALED_VAR, "")
    return (search_term(request, token) or "") if token else ""


class TokenSearchChangeList(ChangeList):
    """Django's ChangeList, searching for the term behind the URL's token instead of ``q``.

    Its links (sorting, filters, facets, pages) are built from the URL's own parameters, so they
    carry the token on, never the term. Put in front of an admin's own ChangeList class (pghistory's
    has one) by `token_search_changelist`.
    """

    def get_filters_params(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        lookup_params: dict[str, Any] = super().get_filters_params(params)
        lookup_params.pop(SEALED_VAR, None)  # not a field lookup
        return lookup_params

    def get_queryset(self, request: HttpRequest, exclude_parameters: list[str | None] | None = None) -> Any:
        # Django has just read `q` from the query string, where it never is: the token says the term.
        self.query = searched_term(request)
        if exclude_parameters is None:  # the one-argument call every ChangeList subclass accepts
            return super().get_queryset(request)
        return super().get_queryset(request, exclude_parameters)


_CHANGELISTS: dict[type[ChangeList], type[ChangeList]] = {ChangeList: TokenSearchChangeList}


def token_search_changelist(base: type[ChangeList]) -> type[ChangeList]:
    """`base` (an admin's ChangeList class) searching by token; one class per base."""
    if issubclass(base, TokenSearchChangeList):
        return base
    if base not in _CHANGELISTS:
        _CHANGELISTS[base] = type(base.__name__, (TokenSearchChangeList, base), {"__module__": base.__module__})
    return _CHANGELISTS[base]


class PostedSearchAdmin(admin.ModelAdmin):
    """A ModelAdmin whose list search is posted and whose list URLs hold a token, never the term."""

    # Read by templates/admin/search_form.html: this list's search box posts.
    posted_search = True

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return token_search_changelist(super().get_changelist(request, **kwargs))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST" and POSTED_VAR in request.POST:
            return self._search_redirect(request, request.POST.get(SEARCH_VAR, ""))
        if request.method == "GET" and SEARCH_VAR in request.GET:
            # A link or bookmark with ?q=: the same search, moved off the URL.
            return self._search_redirect(request, request.GET[SEARCH_VAR])
        token = request.GET.get(SEALED_VAR)
        if request.method == "GET" and token is not None and search_term(request, token) is None:
            # Another session's search (an old history entry, a link someone sent): not shown.
            messages.info(request, "That search belongs to an earlier sign-in. Search again.")
            return HttpResponseRedirect(_list_url(request, _without_search(request.GET)))
        return super().changelist_view(request, extra_context)

    def _search_redirect(self, request: HttpRequest, term: str) -> HttpResponse:
        params = _without_search(request.GET)
        term = term.replace("\0", "").strip()  # PostgreSQL holds no NUL; the URL's are refused (400)
        if len(term) > MAX_TERM_LENGTH:
            messages.error(request, f"A search is at most {MAX_TERM_LENGTH} characters; shorten it and search again.")
        elif term:
            params[SEALED_VAR] = search_token(request, term)
        return HttpResponseRedirect(_list_url(request, params))


def _without_search(params: QueryDict) -> QueryDict:
    """The list's other parameters (filters, sorting, popup), less any search and its page."""
    kept = params.copy()
    for name in (SEARCH_VAR, SEALED_VAR, PAGE_VAR, ERROR_FLAG):
        kept.pop(name, None)
    return kept


def _list_url(request: HttpRequest, params: QueryDict) -> str:
    query = params.urlencode()
    return f"{request.path}?{query}" if query else request.path
