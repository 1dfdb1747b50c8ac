"""Request hygiene that no view should have to repeat."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template import loader
from django.urls import reverse


class RejectNulInQueryMiddleware:
    """A NUL character (``%00``) anywhere in the query string or in a request header is a 400, before
    any view reads it.

    PostgreSQL can't hold NUL in text, so a filter, search or lookup value carrying one would fail
    in the database driver as a 500 (admin lists filter straight from the query string), and so would
    a header the app stores (the User-Agent of a sign-in attempt, an access-log row). No field of ours
    can contain it and no browser sends it; forms already refuse it in what is posted (Django's
    ProhibitNullCharactersValidator), so this looks at the query string and the headers only.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()) or any(
            "\x00" in str(value) for key, value in request.META.items() if key.startswith("HTTP_")
        ):
            return HttpResponseBadRequest(loader.get_template("400.html").render())
        return self.get_response(request)


class ClearSiteDataOnLogoutMiddleware:
    """Signing out tells the browser to drop what it kept of the session: ``Clear-Site-Data``.

    On a shared workstation the next person must find no cached page of a patient, no cookie and no
    stored state of the one before (the back button after sign-out shows nothing). Django's logout
    view ends the session on the server; this header, on its answer to the sign-out POST, clears the
    browser's side too.
    """

    HEADER = '"cache", "cookies", "storage"'

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "POST" and request.path == reverse("logout") and response.status_code < 400:
            response["Clear-Site-Data"] = self.HEADER
        return response
