"""The one-query permission backend answers exactly what Django's ModelBackend answers."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice import roles
from backoffice.accounts.backends import RolePermissionBackend
from backoffice.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _fresh(user: User) -> User:
    """The user re-read, without any permission cache from earlier checks."""
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize("role", roles.ROLES)
def test_each_role_gets_the_same_permissions_as_model_backend(role: str) -> None:
    user = UserFactory(role=role)
    expected = ModelBackend().get_all_permissions(_fresh(user))
    assert expected, f"{role} has no permissions at all"
    assert RolePermissionBackend().get_all_permissions(_fresh(user)) == expected


def test_direct_and_group_permissions_and_role_names_are_read_in_one_query(medical_assistant: User) -> None:
    extra = Permission.objects.get(content_type__app_label="backoffice", codename="view_accesslog")
    medical_assistant.user_permissions.add(extra)
    user = _fresh(medical_assistant)
    backend = RolePermissionBackend()
    with CaptureQueriesContext(connection) as queries:
        perms = backend.get_all_permissions(user)
        assert backend.has_perm(user, "backoffice.view_accesslog")
        assert backend.has_perm(user, "backoffice.claim_handoff")
        assert not backend.has_perm(user, "backoffice.view_board")
        assert user.role_names == [roles.ROLE_MEDICAL_ASSISTANT]
    assert len(queries) == 1
    assert perms == ModelBackend().get_all_permissions(_fresh(medical_assistant))


def test_superuser_has_every_permission_and_inactive_or_object_checks_have_none(admin_user: User) -> None:
    superuser = UserFactory(is_superuser=True)
    backend = RolePermissionBackend()
    assert backend.get_all_permissions(_fresh(superuser)) == ModelBackend().get_all_permissions(_fresh(superuser))
    assert len(backend.get_all_permissions(_fresh(superuser))) == Permission.objects.count()
    inactive = UserFactory(role=roles.ROLE_SUPERVISOR, is_active=False)
    assert backend.get_all_permissions(_fresh(inactive)) == set()
    assert backend.get_all_permissions(_fresh(superuser), obj=object()) == set()


def test_a_user_without_roles_has_no_permissions() -> None:
    assert RolePermissionBackend().get_all_permissions(_fresh(UserFactory())) == set()


def test_role_names_without_a_permission_check_read_the_groups(supervisor: User) -> None:
    supervisor.groups.add(Group.objects.get(name=roles.ROLE_AUDITOR))
    assert _fresh(supervisor).role_names == sorted([roles.ROLE_SUPERVISOR, roles.ROLE_AUDITOR])
