"""The answer when a request fails on our side (``handler500``): a database outage is a 503, not a 500.

Django calls ``handler500`` for any exception no view or middleware handled, still inside the
``except`` block, so the exception is at hand. When the database doesn't answer (a connection
refused or lost: ``OperationalError`` or ``InterfaceError``) the clinic's staff get a 503 with
``Retry-After`` and a page that says so, and a load balancer polling ``/healthz`` gets plain text.
Neither page reads the database: the templates render without the request's context processors
(no ``request.user``, whose session would be read again).
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader

#: Seconds a client should wait before trying again while the database is away.
RETRY_AFTER_SECONDS = 30


def database_unavailable(exc: BaseException | None) -> bool:
    """The database didn't answer (refused, lost, or shut down), as opposed to a query our code got wrong."""
    return isinstance(exc, (OperationalError, InterfaceError))


def server_error(request: HttpRequest) -> HttpResponse:
    if database_unavailable(sys.exc_info()[1]):
        if request.path == "/healthz":
            response = HttpResponse("database unavailable", content_type="text/plain", status=503)
        else:
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
    return HttpResponseServerError(loader.get_template("500.html").render())
