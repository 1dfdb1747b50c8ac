"""Authentication backend: Django's ModelBackend, with a user's permissions and roles in one query.

Every signed-in page checks a permission and shows the user's roles in the header. ModelBackend
reads permissions in two ORM queries (the user's own, then their groups'), and the header read the
groups in a third. Roles are groups here, so this reads all three at once with plain SQL (this
runs on every request; the ORM's query building cost more than the query) and caches the result
on the user object for the rest of the request, as ModelBackend does.
"""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from backoffice.models import User

_PERMISSION = Permission._meta.db_table
_CONTENT_TYPE = ContentType._meta.db_table
_GROUP = Group._meta.db_table
_GROUP_PERMISSIONS = Group.permissions.through._meta.db_table
_USER_GROUPS = User.groups.through._meta.db_table
_USER_PERMISSIONS = User.user_permissions.through._meta.db_table

# (kind, name): ("perm", "app_label.codename") for each permission, ("role", group name) for each role.
_SQL = f"""
SELECT 'perm', ct.app_label || '.' || p.codename
FROM {_PERMISSION} p JOIN {_CONTENT_TYPE} ct ON ct.id = p.content_type_id
WHERE %(superuser)s OR p.id IN (
    SELECT permission_id FROM {_USER_PERMISSIONS} WHERE user_id = %(user)s
    UNION
    SELECT gp.permission_id FROM {_GROUP_PERMISSIONS} gp JOIN {_USER_GROUPS} ug ON ug.group_id = gp.group_id
    WHERE ug.user_id = %(user)s
)
UNION ALL
SELECT 'role', g.name FROM {_GROUP} g JOIN {_USER_GROUPS} ug ON ug.group_id = g.id WHERE ug.user_id = %(user)s
"""  # noqa: S608 - table names come from the models, values are parameters


class RolePermissionBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: object | None = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_SQL, {"superuser": user_obj.is_superuser, "user": user_obj.pk})
                rows = cursor.fetchall()
            user_obj._perm_cache = {name for kind, name in rows if kind == "perm"}
            if isinstance(user_obj, User):
                # Primes User.role_names, which the page header shows.
                user_obj.__dict__["role_names"] = sorted(name for kind, name in rows if kind == "role")
        return user_obj._perm_cache
