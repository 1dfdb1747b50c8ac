"""Sessions name their user: ``UserSession`` replaces Django's ``django_session`` as the session table.

Each row also carries the client address and browser noted at sign-in and the sign-in and
last-activity clocks (backoffice.accounts.sessions), so a person can list their own sessions and end
them. The sessions open at the deploy are moved over, with their user and clocks read from their
data, so nobody is signed out by it and "End all other sessions" reaches them too; their address and
browser were never noted and show as unknown. ``django_session`` is left empty: a session key is a
credential, and no code reads that table any more.

The account-change log's kinds gain two security events on an account: a wrong authenticator code
and sessions ended by their owner.
"""

from datetime import UTC, datetime

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

USER_KEY = "_auth_user_id"  # django.contrib.auth.SESSION_KEY
CLOCKS = {"started": "_security_login_at", "last_seen": "_security_last_activity"}  # backoffice.accounts.auth


def _moment(value):  # type: ignore[no-untyped-def]
    try:
        return datetime.fromtimestamp(float(value), tz=UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def move_open_sessions(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Django's own store decodes the data (signed with SECRET_KEY, the same salt for every store).
    from django.contrib.sessions.backends.db import SessionStore

    Session = apps.get_model("sessions", "Session")
    UserSession = apps.get_model("backoffice", "UserSession")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    decoder = SessionStore()
    rows = []
    for old in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = decoder.decode(old.session_data)
        user_id = str(data.get(USER_KEY, ""))
        rows.append(
            UserSession(
                session_key=old.session_key,
                session_data=old.session_data,
                expire_date=old.expire_date,
                user_id=int(user_id) if user_id.isdigit() else None,
                **{field: _moment(data.get(key)) for field, key in CLOCKS.items()},
            )
        )
    known = set(User.objects.filter(pk__in={r.user_id for r in rows if r.user_id}).values_list("pk", flat=True))
    for row in rows:
        if row.user_id not in known:
            row.user_id = None  # a deleted account's session: kept anonymous, as Django would treat it
    UserSession.objects.bulk_create(rows, batch_size=1000)
    Session.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0014_stationevent_patient"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserSession",
            fields=[
                (
                    "session_key",
                    models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="session key"),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("started", models.DateTimeField(blank=True, help_text="When its user signed in.", null=True)),
                ("last_seen", models.DateTimeField(blank=True, help_text="Their last activity in it.", null=True)),
            ],
            options={
                "verbose_name": "session",
            },
        ),
        migrations.RemoveConstraint(
            model_name="accountchange",
            name="accountchange_kind_valid",
        ),
        migrations.AlterField(
            model_name="accountchange",
            name="kind",
            field=models.CharField(
                choices=[
                    ("account_created", "Account created"),
                    ("role_added", "Role added"),
                    ("role_removed", "Role removed"),
                    ("permission_granted", "Permission granted"),
                    ("permission_revoked", "Permission revoked"),
                    ("superuser_granted", "Made superuser"),
                    ("superuser_revoked", "Superuser removed"),
                    ("staff_granted", "Admin site access given"),
                    ("staff_revoked", "Admin site access removed"),
                    ("activated", "Account activated"),
                    ("deactivated", "Account deactivated"),
                    ("password_reset", "Password set by someone else"),
                    ("password_changed", "Password changed by its owner"),
                    ("second_factor_added", "Authenticator added"),
                    ("second_factor_changed", "Authenticator secret changed"),
                    ("second_factor_removed", "Authenticator removed"),
                    ("group_created", "Role created"),
                    ("group_renamed", "Role renamed"),
                    ("group_deleted", "Role deleted"),
                    ("group_permission_added", "Permission added to a role"),
                    ("group_permission_removed", "Permission removed from a role"),
                    ("second_factor_wrong_code", "Wrong authenticator code"),
                    ("session_ended", "Session ended by its owner"),
                ],
                max_length=30,
            ),
        ),
        migrations.AddConstraint(
            model_name="accountchange",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "kind__in",
                        [
                            "account_created",
                            "role_added",
                            "role_removed",
                            "permission_granted",
                            "permission_revoked",
                            "superuser_granted",
                            "superuser_revoked",
                            "staff_granted",
                            "staff_revoked",
                            "activated",
                            "deactivated",
                            "password_reset",
                            "password_changed",
                            "second_factor_added",
                            "second_factor_changed",
                            "second_factor_removed",
                            "group_created",
                            "group_renamed",
                            "group_deleted",
                            "group_permission_added",
                            "group_permission_removed",
                            "second_factor_wrong_code",
                            "session_ended",
                        ],
                    )
                ),
                name="accountchange_kind_valid",
            ),
        ),
        migrations.AddField(
            model_name="usersession",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="usersession",
            index=models.Index(
                condition=models.Q(("user__isnull", False)), fields=["user", "-last_seen"], name="usersession_user_idx"
            ),
        ),
        migrations.RunPython(move_open_sessions, migrations.RunPython.noop, elidable=True),
    ]
