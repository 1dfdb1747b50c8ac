"""The account-change log: every change to who may do what, written whatever made it.

Receivers on the models themselves (not on admin's views), so a change from admin, a page, the shell
or a migration is recorded alike: roles (groups) added to or removed from a user, permissions given
directly, superuser, staff and active flags, passwords set (by the owner, or by someone else: a
reset), authenticators added, re-keyed or removed, and roles created, renamed, deleted or given
permissions. Rows go to ``AccountChange``, append-only like the access log.

Who did it comes from the request context django-pghistory's middleware keeps for every
POST/PUT/PATCH/DELETE (its user id and path, the same the history snapshots carry); outside a
request the actor is empty.

One writer is not recorded: ``sync_roles`` at migrate, which puts each role's permissions back to
the table in ``backoffice.roles`` (code, reviewed in git). Rows written at migrate would also be in
the snapshot a transactional test restores, and restoring rows is an UPDATE the table refuses.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save
from django.dispatch import receiver
from django_otp.plugins.otp_totp.models import TOTPDevice
from pghistory import runtime as pghistory_runtime

from backoffice.models import AccountChange, AccountChangeKind, User

_unrecorded: ContextVar[bool] = ContextVar("account_changes_unrecorded", default=False)


@contextmanager
def roles_table_sync() -> Iterator[None]:
    """``sync_roles`` restoring the code's roles table: not an account change anyone made."""
    token = _unrecorded.set(True)
    try:
        yield
    finally:
        _unrecorded.reset(token)


def _context() -> tuple[int | None, str]:
    """The acting user's id and the page, from the request's pghistory context (none outside a request)."""
    value = getattr(pghistory_runtime._tracker, "value", None)
    metadata: dict[str, Any] = value.metadata if value is not None else {}
    actor_id = metadata.get("user")
    return (int(actor_id) if actor_id is not None else None), str(metadata.get("url") or "")[:200]


def record(kinds_and_details: Iterable[tuple[str, str]], *, subject: User | None, actor_id: int | None = None) -> None:
    """Append one row per (kind, detail), all by the request's user on ``subject``."""
    rows = list(kinds_and_details)
    if not rows or _unrecorded.get():
        return
    context_actor, source = _context()
    actor_id = actor_id if actor_id is not None else context_actor
    actor = User.objects.filter(pk=actor_id).only("pk", "username").first() if actor_id is not None else None
    AccountChange.objects.bulk_create(
        AccountChange(
            actor=actor,
            actor_username=actor.get_username() if actor else "",
            subject=subject,
            subject_username=subject.get_username() if subject else "",
            kind=kind,
            detail=detail[:200],
            source=source,
        )
        for kind, detail in rows
    )


def _permission_label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


# --- Users: flags and passwords -------------------------------------------------------------------

_FLAGS = (
    ("is_superuser", AccountChangeKind.SUPERUSER_GRANTED, AccountChangeKind.SUPERUSER_REVOKED),
    ("is_staff", AccountChangeKind.STAFF_GRANTED, AccountChangeKind.STAFF_REVOKED),
    ("is_active", AccountChangeKind.ACTIVATED, AccountChangeKind.DEACTIVATED),
)
_WATCHED = {"password", *(name for name, _, _ in _FLAGS)}


@receiver(pre_save, sender=User, dispatch_uid="account_changes_user_pre_save")
def _user_before_save(sender: type[User], instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    instance._account_changes = []  # type: ignore[attr-defined]
    if instance.pk is None or (update_fields is not None and not (set(update_fields) & _WATCHED)):
        return  # a new account is recorded after its insert; a last_login stamp changes nothing here
    before = User.objects.filter(pk=instance.pk).values("password", *(name for name, _, _ in _FLAGS)).first()
    if before is None:
        return
    changes: list[tuple[str, str]] = []
    for name, granted, revoked in _FLAGS:
        if before[name] != getattr(instance, name):
            changes.append((granted if getattr(instance, name) else revoked, ""))
    if before["password"] != instance.password and not _rehashed(before["password"], instance, update_fields):
        changes.append(("password", ""))
    instance._account_changes = changes  # type: ignore[attr-defined]


def _rehashed(old_hash: str, user: User, update_fields: Any) -> bool:
    """A sign-in that upgraded the stored hash of the same password, as check_password does.

    Django's upgrade saves only the password, after clearing the raw password set_password keeps
    (a real change still holds it until its save is done), and only from a hash that needed it.
    """
    from django.contrib.auth.hashers import get_hasher, identify_hasher

    if getattr(user, "_password", None) is not None or set(update_fields or ()) != {"password"}:
        return False
    try:
        old = identify_hasher(old_hash)
    except ValueError:
        return False
    return old.algorithm != get_hasher().algorithm or old.must_update(old_hash)


@receiver(post_save, sender=User, dispatch_uid="account_changes_user_post_save")
def _user_after_save(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    actor_id, _ = _context()
    if created:
        changes = [(AccountChangeKind.ACCOUNT_CREATED, "")]
        changes += [(granted, "") for name, granted, _ in _FLAGS if name != "is_active" and getattr(instance, name)]
        if not instance.is_active:
            changes.append((AccountChangeKind.DEACTIVATED, ""))
        record(changes, subject=instance)
        return
    changes = []
    for kind, detail in getattr(instance, "_account_changes", []):
        if kind == "password":
            kind = AccountChangeKind.PASSWORD_CHANGED if actor_id == instance.pk else AccountChangeKind.PASSWORD_RESET
            detail = "" if instance.has_usable_password() else "sign-in with a password turned off"
        changes.append((kind, detail))
    instance._account_changes = []  # type: ignore[attr-defined]
    record(changes, subject=instance)


# --- Roles and permissions: many-to-many changes, from either side ---------------------------------


def _changed_pks(instance: Any, action: str, pk_set: set[int] | None, related: Any) -> set[int] | None:
    """The other side's ids an m2m change touched, or None when there's nothing to record.

    ``related`` is the instance's manager for the relation (read at pre_clear only: a clear sends no
    ids, so what it removes is remembered on the instance before the rows go).
    """
    if action == "pre_clear":
        instance._account_cleared = set(related.values_list("pk", flat=True))
        return None
    if action not in ("post_add", "post_remove", "post_clear"):
        return None
    pks = set(pk_set or ()) if action != "post_clear" else getattr(instance, "_account_cleared", set())
    return pks or None


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="account_changes_user_groups")
def _user_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[int] | None, **kwargs: Any
) -> None:
    pks = _changed_pks(instance, action, pk_set, instance.user_set if reverse else instance.groups)
    if pks is None:
        return
    kind = AccountChangeKind.ROLE_ADDED if action == "post_add" else AccountChangeKind.ROLE_REMOVED
    if reverse:  # group.user_set.add(user, ...)
        for user in User.objects.filter(pk__in=pks).order_by("pk"):
            record([(kind, instance.name)], subject=user)
    else:
        names = Group.objects.filter(pk__in=pks).order_by("name").values_list("name", flat=True)
        record([(kind, name) for name in names], subject=instance)


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="account_changes_user_permissions")
def _user_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[int] | None, **kwargs: Any
) -> None:
    pks = _changed_pks(instance, action, pk_set, instance.user_set if reverse else instance.user_permissions)
    if pks is None:
        return
    kind = AccountChangeKind.PERMISSION_GRANTED if action == "post_add" else AccountChangeKind.PERMISSION_REVOKED
    if reverse:  # permission.user_set.add(user, ...)
        for user in User.objects.filter(pk__in=pks).order_by("pk"):
            record([(kind, _permission_label(instance))], subject=user)
    else:
        permissions = Permission.objects.filter(pk__in=pks).select_related("content_type")
        record(sorted((kind, _permission_label(p)) for p in permissions), subject=instance)


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="account_changes_group_permissions")
def _group_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[int] | None, **kwargs: Any
) -> None:
    pks = _changed_pks(instance, action, pk_set, instance.group_set if reverse else instance.permissions)
    if pks is None:
        return
    kind = (
        AccountChangeKind.GROUP_PERMISSION_ADDED if action == "post_add" else AccountChangeKind.GROUP_PERMISSION_REMOVED
    )
    if reverse:  # permission.group_set.add(group, ...)
        names = Group.objects.filter(pk__in=pks).order_by("name").values_list("name", flat=True)
        record([(kind, f"{name}: {_permission_label(instance)}") for name in names], subject=None)
    else:
        permissions = Permission.objects.filter(pk__in=pks).select_related("content_type")
        record(sorted((kind, f"{instance.name}: {_permission_label(p)}") for p in permissions), subject=None)


@receiver(pre_save, sender=Group, dispatch_uid="account_changes_group_pre_save")
def _group_before_save(sender: type[Group], instance: Group, **kwargs: Any) -> None:
    instance._account_old_name = (  # type: ignore[attr-defined]
        Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first() if instance.pk else None
    )


@receiver(post_save, sender=Group, dispatch_uid="account_changes_group_post_save")
def _group_after_save(sender: type[Group], instance: Group, created: bool, **kwargs: Any) -> None:
    if created:
        record([(AccountChangeKind.GROUP_CREATED, instance.name)], subject=None)
        return
    old = getattr(instance, "_account_old_name", None)
    if old is not None and old != instance.name:
        record([(AccountChangeKind.GROUP_RENAMED, f"{old} → {instance.name}")], subject=None)


@receiver(pre_delete, sender=Group, dispatch_uid="account_changes_group_deleted")
def _group_deleted(sender: type[Group], instance: Group, **kwargs: Any) -> None:
    # Deleting a role removes it from its members without an m2m signal: name them here.
    members = ", ".join(instance.user_set.order_by("username").values_list("username", flat=True))
    record([(AccountChangeKind.GROUP_DELETED, f"{instance.name} (members: {members or 'none'})")], subject=None)


# --- Authenticators (django-otp TOTP devices) -------------------------------------------------------


@receiver(pre_save, sender=TOTPDevice, dispatch_uid="account_changes_totp_pre_save")
def _device_before_save(sender: type[TOTPDevice], instance: TOTPDevice, **kwargs: Any) -> None:
    # Every verification saves the device (its last time step, the throttle): only a new secret counts.
    old_key = TOTPDevice.objects.filter(pk=instance.pk).values_list("key", flat=True).first() if instance.pk else None
    instance._account_rekeyed = old_key is not None and old_key != instance.key


@receiver(post_save, sender=TOTPDevice, dispatch_uid="account_changes_totp_post_save")
def _device_after_save(sender: type[TOTPDevice], instance: TOTPDevice, created: bool, **kwargs: Any) -> None:
    if created:
        record([(AccountChangeKind.SECOND_FACTOR_ADDED, instance.name)], subject=instance.user)
    elif getattr(instance, "_account_rekeyed", False):
        record([(AccountChangeKind.SECOND_FACTOR_CHANGED, instance.name)], subject=instance.user)


@receiver(pre_delete, sender=TOTPDevice, dispatch_uid="account_changes_totp_deleted")
def _device_deleted(sender: type[TOTPDevice], instance: TOTPDevice, **kwargs: Any) -> None:
    record([(AccountChangeKind.SECOND_FACTOR_REMOVED, instance.name)], subject=instance.user)
