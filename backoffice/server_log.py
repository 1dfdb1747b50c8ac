"""Server request logs without query strings: what was searched for never reaches a log file.

A request line like ``GET /admin/backoffice/patient/?q=Gutierrez HTTP/1.1`` would put a patient's
name in the log of whoever serves the app. The app's own searches are posted and admin lists carry an
opaque token (``backoffice.admin_search``), but a log must not depend on every URL being clean: both
servers log the path alone.

- ``NoQueryString``: a logging filter, on Django's ``django.server`` logger (``manage.py runserver``,
  which ``make run`` uses) in ``settings.LOGGING``.
- ``GunicornLogger``: gunicorn's logger (production, ``make bench``; ``logger_class`` in
  ``gunicorn.conf.py``) with every access-log atom that can hold a query string stripped of it,
  whatever ``access_log_format`` says.
"""

import logging
import re
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

# A path with its query: from the "?" to the next space or quote (request lines sit in quotes).
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


def strip_query(text: str) -> str:
    """`text` with each URL's query string cut off: "GET /a/?q=x HTTP/1.1" → "GET /a/ HTTP/1.1"."""
    return _QUERY.sub(r"\1", text)


class NoQueryString(logging.Filter):
    """Rewrites a record's message with its URLs' query strings removed (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        stripped = strip_query(message)
        if stripped != message:
            record.msg, record.args = stripped, None
        return True


class GunicornLogger(Logger):
    """gunicorn's logger; the request line, URL, query and referrer atoms carry no query string."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {environ.get('SERVER_PROTOCOL')}"
        atoms["q"] = ""
        for key in ("f", "{referer}i", "{raw_uri}e", "{query_string}e", "{request_uri}e", "{http_referer}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = "" if key == "{query_string}e" else strip_query(atoms[key])
        return atoms
