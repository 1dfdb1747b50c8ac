"""Settings for the clinic back office, read from the environment.

Every value that changes between machines comes from an environment variable and is
parsed strictly (see backoffice.env): a malformed value stops start-up.
"""

from pathlib import Path

import dj_database_url
import pghistory
from django.core.exceptions import ImproperlyConfigured

from backoffice.embedded_db import embedded_database_url
from backoffice.env import env_bool, env_choice, env_int, env_list, env_str
from backoffice.roles import ROLES

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-only-for-debug" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "backoffice",
    "procedures",
    "specimens",
    "lab",
    # The append-only tables' checkpoints (tamper evidence) and the database roles' set-up.
    "backoffice.audit",
    # The FHIR read API (/fhir/): its API clients and the searches their paging links name.
    "backoffice.fhir",
    # Append-only triggers and field-level history (docs/security.md, "Access log and history");
    # pghistory.admin before django.contrib.admin so its "History" links reach the change forms.
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    # Django's admin on a site that keeps names and MRNs out of its URLs and titles (backoffice/admin_site.py).
    "backoffice.admin_site.ClinicAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.postgres",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_filters",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Background work: Django's tasks API, stored in Postgres, run by `manage.py db_worker`.
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A NUL in the query string is a 400 before any view (or the database) sees it.
    "backoffice.middleware.RejectNulInQueryMiddleware",
    # The sign-out's answer clears the browser's cache, cookies and storage for the site.
    "backoffice.middleware.ClearSiteDataOnLogoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Tags history snapshots written during the request with the user and path.
    "pghistory.middleware.HistoryMiddleware",
    # Before the session policy, which leaves a "you were signed out" message for the login page.
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle and absolute session limits, deactivated users, no-store on signed-in pages.
    "backoffice.accounts.middleware.SessionSecurityMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Django's LoginRequiredMiddleware, answering htmx requests with a full-page redirect.
    "backoffice.accounts.middleware.LoginRequiredMiddleware",
    # After OTPMiddleware (request.user.is_verified) and the login check.
    "backoffice.accounts.middleware.OTPRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the request into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"
ASGI_APPLICATION = "backoffice.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.accounts.auth.session_timeout",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", "") or embedded_database_url(BASE_DIR)
try:
    _database = dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
except ValueError as exc:  # dj-database-url raises ValueError on an unknown scheme
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _database["ENGINE"] != "django.db.backends.postgresql":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…); no other database is supported.")
# Two database roles (docs/security.md, "Database roles"): an owner that owns every table and runs the
# migrations, and the app's role, which owns nothing and may only read and append the append-only
# tables. DB_CONNECT_AS picks whom this process connects as: "" as DATABASE_URL says (production's app
# processes, and the test suite), "owner" for migrate, db_roles and seed_demo (DATABASE_OWNER_URL, else
# DATABASE_URL, acting as DB_OWNER_ROLE), "app" as DB_APP_ROLE on DATABASE_URL's server (make run and
# make bench, whose DATABASE_URL, or the embedded server's, is a superuser's).
DB_OWNER_ROLE = env_str("DB_OWNER_ROLE", "backoffice_owner")
DB_APP_ROLE = env_str("DB_APP_ROLE", "backoffice_app")
DB_CONNECT_AS = env_str("DB_CONNECT_AS", "")
if DB_CONNECT_AS == "owner":
    _owner_url = env_str("DATABASE_OWNER_URL", "")
    if _owner_url:
        _database = dj_database_url.parse(_owner_url, conn_max_age=0)
    if _database["USER"] != DB_OWNER_ROLE:  # a login that is a member of the owner role (or a superuser)
        _database["OPTIONS"] = {**_database.get("OPTIONS", {}), "assume_role": DB_OWNER_ROLE}
elif DB_CONNECT_AS == "app":
    _database["USER"] = DB_APP_ROLE
    _database["PASSWORD"] = env_str("DB_APP_PASSWORD", "")
elif DB_CONNECT_AS:
    raise ImproperlyConfigured(f"DB_CONNECT_AS is {DB_CONNECT_AS!r}; it must be empty, 'owner' or 'app'.")
# Every connection starts with django-pgtrigger's ``pgtrigger.ignore`` set, to nothing ignored: its
# triggers (pghistory's on every tracked table) look it up in a PL/pgSQL exception block, which costs a
# subtransaction per row written when the setting is missing (13x slower bulk inserts, measured).
_database["OPTIONS"] = {**_database.get("OPTIONS", {}), "options": "-c pgtrigger.ignore={}"}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "backoffice.User"
# django-axes checks for a lockout before any backend checks a password (it must come first).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "backoffice.accounts.backends.RolePermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Flash messages ("You claimed Rosa Martínez") travel in a signed cookie that the next page reads and
# deletes, never in the session table; none falls back to the session (docs/security.md, "PHI in URLs").
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

# Queue rules: how long a handoff may wait before the queue highlights it.
QUEUE_OVERDUE_MINUTES_ROUTINE = env_int("QUEUE_OVERDUE_MINUTES_ROUTINE", 20, minimum=1)
QUEUE_OVERDUE_MINUTES_STAT = env_int("QUEUE_OVERDUE_MINUTES_STAT", 5, minimum=1)
# What an MA's "hand the patient back" does (patient left, refused, clinician changed the order): "return"
# sends the handoff back to its ordering clinician, who re-queues or cancels it; "cancel" cancels it,
# its items closed as a clinician's cancel closes them. A deployment's policy, like the thresholds above.
MA_HAND_BACK = env_choice("MA_HAND_BACK", "return", ("return", "cancel"))

# Background tasks (django.tasks) live in Postgres; any number of `manage.py db_worker` processes, on
# any number of machines, take them with SELECT ... FOR UPDATE SKIP LOCKED (README, "Background work").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Rows per queue page, and handoffs per supervisor-board column (the oldest; the rest are counted).
QUEUE_PAGE_SIZE = env_int("QUEUE_PAGE_SIZE", 50, minimum=5)
# Emergency ("break-glass") access to one patient's record lasts this long from when it is asked for.
BREAK_GLASS_MINUTES = env_int("BREAK_GLASS_MINUTES", 60, minimum=1)
# Rendered queue rows and board cards, kept in each worker's memory (backoffice/pages/fragments.py). Their
# keys change with the handoff and patient rows; this bounds how long other names they print
# (exam room, staff, station, catalog items) can lag behind a rename.
FRAGMENT_CACHE_SECONDS = env_int("FRAGMENT_CACHE_SECONDS", 60, minimum=0)
# The turnaround dashboard's figures (lab.turnaround.selectors), kept this long per range and choice
# in the default cache; the page says as of when. 0: computed on every request (make bench --turnaround).
TURNAROUND_CACHE_SECONDS = env_int("TURNAROUND_CACHE_SECONDS", 300, minimum=0)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "TIMEOUT": FRAGMENT_CACHE_SECONDS,
        "OPTIONS": {"MAX_ENTRIES": 5000},
    },
}
BOARD_COLUMN_SIZE = env_int("BOARD_COLUMN_SIZE", 25, minimum=5)

# Specimen accession numbers: PREFIX, then the sequence number zero-padded to DIGITS, then a Damm
# check digit (catches every single-digit error and every swap of adjacent digits), e.g. S000012347.
ACCESSION_PREFIX = env_str("ACCESSION_PREFIX", "S")
if not ACCESSION_PREFIX.isascii() or not ACCESSION_PREFIX.isalnum() or len(ACCESSION_PREFIX) > 4:
    raise ImproperlyConfigured("ACCESSION_PREFIX must be 1 to 4 letters or digits, e.g. S.")
ACCESSION_DIGITS = env_int("ACCESSION_DIGITS", 8, minimum=6)
# Patient identifiers (backoffice/identifiers.py; a system check refuses a bad pattern or no scanner mark).
# MRN_PATTERN: the whole MRN's format, a regular expression; patients are saved only with an MRN in it.
MRN_PATTERN = env_str("MRN_PATTERN", r"[A-Z]{1,3}[0-9]{6,11}")
# What the barcode scanners send around what they read (set in the scanners: the default is Code 128's
# AIM code ID), so a scanned wristband is told from an MRN typed or pasted from the screen.
WRISTBAND_SCAN_PREFIX = env_str("WRISTBAND_SCAN_PREFIX", "]C0")
WRISTBAND_SCAN_SUFFIX = env_str("WRISTBAND_SCAN_SUFFIX", "")
# A lab technician's patient search finds patients with a specimen, test or send-out open in the lab, or
# changed within this many days.
LAB_SEARCH_RECENT_DAYS = env_int("LAB_SEARCH_RECENT_DAYS", 30, minimum=1)
# Who sends the send-outs: printed on every manifest and requisition a reference lab receives.
CLINIC_NAME = env_str("CLINIC_NAME", "Clinic back office")

# --- Authentication and sessions (docs/security.md, "Authentication and sessions") ---------------

# Login throttling (django-axes, backoffice/accounts/throttle.py): one counter per username *and* client
# address together, so one workstation's failures never pause the account elsewhere. After
# LOGIN_FAILURE_LIMIT failures that pair pauses LOGIN_LOCKOUT_MINUTES, doubling with each failure after a
# pause up to LOGIN_LOCKOUT_MAX_MINUTES; tries during a pause don't count. Failures are forgotten
# LOGIN_FAILURE_MEMORY_HOURS after the last one, at a successful sign-in, or at a new password.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 1, minimum=1)
LOGIN_LOCKOUT_MAX_MINUTES = max(LOGIN_LOCKOUT_MINUTES, env_int("LOGIN_LOCKOUT_MAX_MINUTES", 60, minimum=1))
LOGIN_FAILURE_MEMORY_HOURS = env_int("LOGIN_FAILURE_MEMORY_HOURS", 24, minimum=1)
AXES_COOLOFF_TIME = "backoffice.accounts.throttle.cool_off"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Axes' tables hold the keyed hash of the username (backoffice.accounts.auth.username_ref), never what
# was typed (people type their password there), and append to its two logs only.
AXES_HANDLER = "backoffice.accounts.throttle.SignInRecordHandler"
AXES_USERNAME_CALLABLE = "backoffice.accounts.throttle.username_key"
# The authenticator's code too: a wrong password when adding or removing an app (the password asked
# again, backoffice.accounts.views) is a failed sign-in to axes, and the code posted with it is unused.
AXES_SENSITIVE_PARAMETERS = ["username", "code"]
# Axes' tables in admin by backoffice/accounts/axes_admin.py: searched by username, logs view-only.
AXES_ENABLE_ADMIN = False
# Sign-in records (axes' failure and sign-in logs) older than this are deleted by
# `manage.py prune_signin_records`, run as the owner role (six years: HIPAA's audit documentation).
SIGNIN_RECORD_RETENTION_DAYS = env_int("SIGNIN_RECORD_RETENTION_DAYS", 2190, minimum=1)
# The access log and the audit checkpoints are kept this many years, never fewer than six (HIPAA's
# audit documentation); `manage.py audit_retention`, as the owner role, removes what is older.
ACCESS_LOG_RETENTION_YEARS = env_int("ACCESS_LOG_RETENTION_YEARS", 6, minimum=6)
# A supervisor confirming at a trainee's workstation (backoffice/accounts/reauth.py): wrong tries per
# trainee and supervisor before that pair pauses (the same growing pauses), apart from sign-in.
SUPERVISOR_CONFIRM_FAILURE_LIMIT = env_int("SUPERVISOR_CONFIRM_FAILURE_LIMIT", 3, minimum=1)
# How long the supervisor board lists a paused sign-in or confirmation.
SECURITY_ALERT_HOURS = env_int("SECURITY_ALERT_HOURS", 24, minimum=1)
# The lockout page (templates/backoffice/accounts/lockout.html), the same whether or not the account exists.
AXES_LOCKOUT_CALLABLE = "backoffice.accounts.auth.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "backoffice.accounts.auth.client_ip"
# Axes' own log lines name the client by a keyed hash of the username (people type passwords there).
AXES_CLIENT_STR_CALLABLE = "backoffice.accounts.auth.client_str"
AXES_VERBOSE = False
# The client address comes from backoffice.audit.log.client_ip, as the access log's does (one rule for
# both; TRUSTED_PROXY_IP_HEADER below).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)

# Second factor (django-otp, TOTP): members of these groups must enter a code after their password.
# Supervisors and auditors read (and export) the whole access log: every patient's name and MRN.
OTP_REQUIRED_ROLES = env_list("OTP_REQUIRED_ROLES", ["Admin", "Supervisor", "Auditor"])
# A misspelt role would quietly drop the second factor for that role: refuse to start instead.
_unknown_roles = sorted(set(OTP_REQUIRED_ROLES) - set(ROLES))
if _unknown_roles:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"OTP_REQUIRED_ROLES names unknown roles {_unknown_roles}; roles are {ROLES}.")
OTP_REQUIRED_FOR_SUPERUSERS = env_bool("OTP_REQUIRED_FOR_SUPERUSERS", True)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Clinic back office")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Shared workstations: the server ends a session after this long without activity, and after an
# absolute lifetime whatever the activity. SESSION_IDLE_TIMEOUT_SECONDS is what the code reads;
# tests override it directly to get a timeout of a few seconds.
SESSION_IDLE_TIMEOUT_MINUTES = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 15, minimum=1)
SESSION_IDLE_TIMEOUT_SECONDS = SESSION_IDLE_TIMEOUT_MINUTES * 60
SESSION_IDLE_WARNING_SECONDS = env_int("SESSION_IDLE_WARNING_SECONDS", 60, minimum=5)
SESSION_ABSOLUTE_LIFETIME_HOURS = env_int("SESSION_ABSOLUTE_LIFETIME_HOURS", 12, minimum=1)
SESSION_ABSOLUTE_LIFETIME_SECONDS = SESSION_ABSOLUTE_LIFETIME_HOURS * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Django's database sessions, each row also naming its user, client and clocks, so a person can list
# and end their own sessions (backoffice.accounts.sessions, the "Your sessions" part of /account/2fa/).
SESSION_ENGINE = "backoffice.accounts.sessions"
# The server-side row lives no longer than the absolute lifetime (clearsessions deletes it).
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_LIFETIME_SECONDS

# --- Transport and headers ------------------------------------------------------------------------
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Production is HTTPS only; DEBUG (make run) serves plain http on localhost.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Pages carry the token (hx-headers, forms); no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe the health check over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None

# --- Access log and history (docs/security.md, "Access log and history") ---------------------------
# The request header (as in request.META, e.g. "HTTP_X_REAL_IP") the reverse proxy sets to the client's
# address; empty means the access log records REMOTE_ADDR.
# Behind our TLS proxy every request comes from the proxy's own address, which would also make the
# per-address login lockout lock the whole clinic out at once: default to the header it appends.
TRUSTED_PROXY_IP_HEADER = env_str("TRUSTED_PROXY_IP_HEADER", "HTTP_X_FORWARDED_FOR" if BEHIND_TLS_PROXY else "")
# Only writes change records; GETs need no history context (and skip its per-query overhead).
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Admin's history pages: every tracked record's changes with their diff, user and path, access-logged.
PGHISTORY_ADMIN_MODEL = "pghistory.MiddlewareEvents"
PGHISTORY_ADMIN_CLASS = "backoffice.admin.HistoryEventsAdmin"
# History rows are read by their record (pgh_obj, indexed by tracked_history) and their request's
# context, never by a foreign key copied from the record: an index on each (14 on a result's history)
# cost every tracked write, the HL7 intake's most of all.
PGHISTORY_FOREIGN_KEY_FIELD = pghistory.ForeignKey(db_index=False)
PGHISTORY_CONTEXT_FIELD = pghistory.ContextForeignKey(db_index=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The development server's request lines without their query strings (gunicorn's: gunicorn.conf.py).
    "filters": {"no_query_string": {"()": "backoffice.server_log.NoQueryString"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "server": {"class": "logging.StreamHandler", "formatter": "server", "filters": ["no_query_string"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Sign-ins, failures, lockouts, second factor and session ends; never patient data.
        "backoffice.security": {"level": "INFO"},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    },
}
