"""Authentication backend: Django's ModelBackend, with a user's permissions read in one query.

Every signed-in page checks a permission, and ModelBackend reads them in two queries (the user's
own, then their groups'). Roles are groups here, so this reads both at once; the result is cached
on the user object for the rest of the request, as ModelBackend does.
"""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, Q


class RolePermissionBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: object | None = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                permissions = Permission.objects.all()
            else:
                user_groups = user_obj.groups.through.objects.filter(user=user_obj)
                permissions = Permission.objects.filter(
                    Q(
                        Exists(
                            user_obj.user_permissions.through.objects.filter(user=user_obj, permission=OuterRef("pk"))
                        )
                    )
                    | Q(Exists(user_groups.filter(group__permissions=OuterRef("pk"))))
                )
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in permissions.values_list("content_type__app_label", "codename")
            }
        return user_obj._perm_cache
