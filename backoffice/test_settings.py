"""Settings for the test suite: production settings with a throwaway secret and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")

from backoffice.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Browser tests talk plain HTTP to the live server, so cookies can't require TLS there, and the
# test client's plain-http requests must not be redirected to https.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Django's test Client.login() authenticates without a request, which axes' backend refuses; this
# subclass lets such calls through to the password check. Requests through the login page still
# go through the real lockout (tests/security/test_login.py).
AUTHENTICATION_BACKENDS = [
    "tests.security.backends.RequestOptionalAxesBackend",
    "backoffice.accounts.backends.RolePermissionBackend",
]
# Most tests log in with force_login and never pass a second factor; tests/security/conftest.py
# turns the production policy back on for the security tests.
OTP_REQUIRED_ROLES = []
OTP_REQUIRED_FOR_SUPERUSERS = False
