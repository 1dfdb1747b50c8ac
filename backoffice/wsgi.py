"""WSGI entry point (gunicorn backoffice.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
application = get_wsgi_application()

# Production (DEBUG off) refuses to serve when its database role could rewrite the audit trail.
from backoffice.audit.checks import refuse_to_start_if_app_role_can_rewrite  # noqa: E402

refuse_to_start_if_app_role_can_rewrite()
