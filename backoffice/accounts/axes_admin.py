"""django-axes' tables in Django admin (AXES_ENABLE_ADMIN is off; these take axes' own admins' place).

The usernames in them are keyed hashes (backoffice.accounts.throttle): a search for a typed username
also finds its hash, so whoever unlocks an account finds its counters by its username. The two
logs are append-only (backoffice.audit.models.SignIn, SignInFailure): view only, here too.
"""

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.accounts.auth import username_ref
from backoffice.accounts.throttle import SignInRecordHandler


class _ByHashedUsername:
    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        found, duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        if search_term.strip():
            found = found | queryset.filter(username=username_ref(search_term))
        return found, duplicates


@admin.register(AccessAttempt)
class SignInCounterAdmin(_ByHashedUsername, AccessAttemptAdmin):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler = SignInRecordHandler()


class _AppendOnly(_ByHashedUsername):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessLog)
class SignInLogAdmin(_AppendOnly, AccessLogAdmin):
    pass


@admin.register(AccessFailureLog)
class SignInFailureAdmin(_AppendOnly, AccessFailureLogAdmin):
    pass
