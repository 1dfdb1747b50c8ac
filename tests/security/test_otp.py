"""Second factor: TOTP after the password for required roles; optional for everyone else.

Required for admins, supervisors and auditors (and superusers); anyone may turn it on. Adding,
replacing or removing an app asks for the password again; every wrong code is in the security log
and the account-change log auditors read.
"""

import logging

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.models import User
from tests.conftest import PASSWORD
from tests.security.conftest import current_code, enroll

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, next_url: str = "") -> None:
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302, response.content.decode()[:500]


@pytest.fixture
def no_throttle(settings) -> None:  # type: ignore[no-untyped-def]
    """django-otp waits 1, 2, 4… seconds after each wrong code; tests that retry at once skip that."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_the_production_default_requires_a_second_factor_for_admins_supervisors_and_auditors(settings) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    # The test settings relax the policy; read what a production process would use.
    code = "import django; django.setup(); from django.conf import settings as s; print(s.OTP_REQUIRED_ROLES)"
    env = {
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "SECRET_KEY": "x" * 60,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/none",
        "PATH": "/usr/bin:/bin",
    }
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    # Supervisors and auditors read (and export) the access log: every patient's name and MRN.
    assert output.stdout.strip() == "['Admin', 'Supervisor', 'Auditor']"
    code = code.replace("OTP_REQUIRED_ROLES", "OTP_REQUIRED_FOR_SUPERUSERS")
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert output.stdout.strip() == "True"


def test_a_required_role_is_sent_to_the_code_step_after_the_password(client: Client, admin_user: User) -> None:
    enroll(admin_user)
    sign_in(client, "admin")
    for url in [reverse("home"), reverse("admin:index"), reverse("account_security")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("otp_verify")), url


def test_a_required_role_without_an_app_is_sent_to_set_one_up(client: Client, admin_user: User) -> None:
    sign_in(client, "admin")
    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("otp_setup"))
    page = response.content.decode()
    assert "Set up two-step sign-in" in page
    assert "otpauth://totp/" in page
    assert 'src="data:image/svg+xml' in page


def test_a_wrong_code_is_refused(client: Client, admin_user: User, caplog: pytest.LogCaptureFixture) -> None:
    enroll(admin_user)
    sign_in(client, "admin")
    with caplog.at_level(logging.INFO):
        response = client.post(reverse("otp_verify"), {"code": "000000"})
    assert response.status_code == 422
    assert "That code isn&#x27;t right" in response.content.decode()
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("otp_verify"))
    assert any(r.getMessage().startswith("second_factor_failed") for r in caplog.records)


def test_a_correct_code_lets_them_in_with_a_new_session_id(client: Client, admin_user: User, no_throttle: None) -> None:
    device = enroll(admin_user)
    sign_in(client, "admin", next_url=reverse("admin:index"))
    client.post(reverse("otp_verify"), {"code": "000000"})
    key_before = client.session.session_key

    response = client.post(reverse("otp_verify"), {"code": current_code(device), "next": reverse("admin:index")})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert client.session.session_key != key_before
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_code_cannot_be_used_twice(client: Client, admin_user: User) -> None:
    device = enroll(admin_user)
    code = current_code(device)
    sign_in(client, "admin")
    assert client.post(reverse("otp_verify"), {"code": code}).status_code == 302

    other = Client()
    sign_in(other, "admin")
    assert other.post(reverse("otp_verify"), {"code": code}).status_code == 422


def test_repeated_wrong_codes_are_throttled(client: Client, admin_user: User) -> None:
    device = enroll(admin_user)
    sign_in(client, "admin")
    client.post(reverse("otp_verify"), {"code": "000000"})
    response = client.post(reverse("otp_verify"), {"code": current_code(device)})
    assert response.status_code == 422
    assert "Too many wrong codes" in response.content.decode()


def test_setting_up_an_app_confirms_it_with_a_code(client: Client, admin_user: User, no_throttle: None) -> None:
    sign_in(client, "admin")
    client.get(reverse("otp_setup"))
    device = TOTPDevice.objects.get(user=admin_user)
    assert not device.confirmed

    assert client.post(reverse("otp_setup"), {"password": PASSWORD, "code": "123"}).status_code == 422
    response = client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_setup_page_shows_the_same_secret_until_confirmed(client: Client, admin_user: User) -> None:
    sign_in(client, "admin")
    first = client.get(reverse("otp_setup")).context["otpauth_uri"]
    second = client.get(reverse("otp_setup")).context["otpauth_uri"]
    assert first == second
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1


def test_a_second_app_cannot_be_added_to_get_around_the_first(client: Client, admin_user: User) -> None:
    enroll(admin_user)
    sign_in(client, "admin")
    response = client.get(reverse("otp_setup"))
    assert response.status_code == 302
    assert response["Location"] == reverse("otp_verify")
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1


def test_a_superuser_needs_a_second_factor_too(client: Client, django_user_model: type[User]) -> None:
    django_user_model.objects.create_superuser("root", "root@clinic.test", PASSWORD)
    sign_in(client, "root")
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("otp_verify"))


def test_a_role_that_does_not_require_it_is_not_asked(client: Client, medical_assistant: User) -> None:
    sign_in(client, "ma")
    assert client.get(reverse("queue")).status_code == 200


def test_other_roles_can_turn_it_on_from_their_account_page(
    client: Client, medical_assistant: User, no_throttle: None
) -> None:
    sign_in(client, "ma")
    page = client.get(reverse("account_security")).content.decode()
    assert "Set up an authenticator app" in page
    client.get(reverse("otp_setup"))
    device = TOTPDevice.objects.get(user=medical_assistant)
    client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(device)})
    assert "Two-step sign-in is on" in client.get(reverse("account_security")).content.decode()

    # From now on their own sign-in asks for the code as well.
    other = Client()
    sign_in(other, "ma")
    assert other.get(reverse("queue"))["Location"].startswith(reverse("otp_verify"))


def test_other_roles_can_turn_it_off_with_their_password_and_a_current_code(
    client: Client, medical_assistant: User, no_throttle: None
) -> None:
    device = enroll(medical_assistant)
    sign_in(client, "ma")
    client.post(reverse("otp_verify"), {"code": current_code(device)})
    assert client.post(reverse("otp_disable"), {"password": PASSWORD, "code": "000000"}).status_code == 422
    assert TOTPDevice.objects.filter(user=medical_assistant).exists()
    device.refresh_from_db()
    # A current code without the password (someone at a session left open) is not enough.
    no_password = client.post(reverse("otp_disable"), {"code": current_code(device, offset_steps=1)})
    assert no_password.status_code == 422
    wrong = client.post(
        reverse("otp_disable"), {"password": "not-my-password", "code": current_code(device, offset_steps=1)}
    )
    assert wrong.status_code == 422
    assert "That isn&#x27;t your password." in wrong.content.decode()
    assert TOTPDevice.objects.filter(user=medical_assistant).exists()

    response = client.post(reverse("otp_disable"), {"password": PASSWORD, "code": current_code(device, offset_steps=1)})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=medical_assistant).exists()
    assert client.get(reverse("queue")).status_code == 200


def test_an_optional_user_whose_app_was_removed_is_not_stuck_at_the_code_step(
    client: Client, medical_assistant: User
) -> None:
    device = enroll(medical_assistant)
    sign_in(client, "ma")
    device.delete()  # an administrator removed it (lost phone)
    response = client.get(reverse("otp_verify"), {"next": reverse("queue")})
    assert response["Location"] == reverse("queue")
    assert client.get(reverse("queue")).status_code == 200


def test_a_required_role_cannot_turn_it_off(client: Client, admin_user: User) -> None:
    device = enroll(admin_user)
    sign_in(client, "admin")
    client.post(reverse("otp_verify"), {"code": current_code(device)})
    client.post(reverse("otp_disable"), {"password": PASSWORD, "code": current_code(device, offset_steps=1)})
    assert TOTPDevice.objects.filter(user=admin_user).exists()


def test_a_user_waiting_for_the_code_step_can_still_sign_out(client: Client, admin_user: User) -> None:
    enroll(admin_user)
    sign_in(client, "admin")
    assert client.post(reverse("logout")).status_code == 302
    assert SESSION_KEY not in client.session


def test_an_htmx_request_before_the_code_step_gets_a_whole_page_redirect(client: Client, admin_user: User) -> None:
    enroll(admin_user)
    sign_in(client, "admin")
    response = client.get(reverse("home"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("otp_verify")


def test_the_next_url_must_stay_on_this_site(client: Client, admin_user: User) -> None:
    device = enroll(admin_user)
    sign_in(client, "admin")
    response = client.post(reverse("otp_verify"), {"code": current_code(device), "next": "https://evil.example/"})
    assert response["Location"] == reverse("home")


def test_an_admin_can_require_the_second_factor_for_a_role_in_admin(supervisor, settings) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from backoffice.accounts.auth import role_requires_second_factor
    from backoffice.models import RolePolicy

    settings.OTP_REQUIRED_ROLES = []
    assert not role_requires_second_factor(supervisor)
    RolePolicy.objects.create(group=Group.objects.get(name="Supervisor"), require_second_factor=True)
    assert role_requires_second_factor(supervisor)


# --- Required for supervisors and auditors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "username", "start_page"), [("supervisor", "sup", "board"), ("auditor", "audit", "audit")]
)
def test_supervisors_and_auditors_must_pass_the_second_factor(
    client: Client, request: pytest.FixtureRequest, fixture: str, username: str, start_page: str, no_throttle: None
) -> None:
    user: User = request.getfixturevalue(fixture)
    # Without an app: sent to set one up, and nothing else opens meanwhile.
    sign_in(client, username)
    for url in (reverse(start_page), reverse("audit_account_changes"), reverse("account_security")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("otp_verify")), url
    assert client.get(reverse("otp_verify"))["Location"].startswith(reverse("otp_setup"))
    setup = client.get(reverse("otp_setup"))
    assert "Your role needs a code from your phone" in setup.content.decode()
    device = TOTPDevice.objects.get(user=user)
    client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(device)})
    assert client.get(reverse(start_page)).status_code == 200

    # With an app: the code at every sign-in; the page that turns it off isn't offered.
    other = Client()
    sign_in(other, username)
    assert other.get(reverse(start_page))["Location"].startswith(reverse("otp_verify"))
    device.refresh_from_db()
    assert other.post(reverse("otp_verify"), {"code": current_code(device, offset_steps=1)}).status_code == 302
    page = other.get(reverse("account_security")).content.decode()
    assert "Your role requires two-step sign-in" in page
    assert "Turn off two-step sign-in" not in page


@pytest.mark.parametrize("fixture", ["medical_assistant", "clinician", "lab_tech"])
def test_the_clinical_roles_may_turn_it_on_but_are_not_made_to(
    client: Client, request: pytest.FixtureRequest, fixture: str
) -> None:
    user: User = request.getfixturevalue(fixture)
    client.force_login(user)
    assert client.get(reverse("home")).status_code in (200, 302)
    assert not client.get(reverse("home")).get("Location", "").startswith(reverse("otp_verify"))
    assert "Set up an authenticator app" in client.get(reverse("account_security")).content.decode()


# --- The password again, to add, replace or remove an app -------------------------------------------


def test_setting_up_an_app_asks_for_the_password_again(
    client: Client, medical_assistant: User, no_throttle: None, caplog: pytest.LogCaptureFixture
) -> None:
    from axes.models import AccessAttempt, AccessFailureLog

    sign_in(client, "ma")
    page = client.get(reverse("otp_setup")).content.decode()
    assert 'autocomplete="current-password"' in page
    device = TOTPDevice.objects.get(user=medical_assistant)

    # A right code alone (someone at the workstation left signed in, with their own phone) is refused.
    response = client.post(reverse("otp_setup"), {"code": current_code(device)})
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    with caplog.at_level(logging.INFO):
        response = client.post(reverse("otp_setup"), {"password": "not-my-password", "code": current_code(device)})
    assert response.status_code == 422
    assert "That isn&#x27;t your password." in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    # The wrong password went through the sign-in's own check: axes counted it, the log has it.
    assert AccessFailureLog.objects.count() == 1
    attempt = AccessAttempt.objects.get()
    assert "not-my-password" not in attempt.post_data
    assert current_code(device) not in attempt.post_data  # the unused code is masked like the password
    assert any(r.getMessage().startswith("sign_in_failed") for r in caplog.records)
    assert "not-my-password" not in caplog.text

    response = client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed


def test_replacing_the_app_asks_for_the_password_and_a_code_from_the_new_one(
    client: Client, medical_assistant: User, no_throttle: None
) -> None:
    old = enroll(medical_assistant)
    sign_in(client, "ma")
    client.post(reverse("otp_verify"), {"code": current_code(old)})
    page = client.get(reverse("otp_setup"))
    assert page.status_code == 200
    assert "Replace your authenticator app" in page.content.decode()
    new = TOTPDevice.objects.get(user=medical_assistant, confirmed=False)
    assert page.context["otpauth_uri"] == new.config_url

    # The old app's code doesn't confirm the new one; nor does the new one's without the password.
    assert (
        client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(old, offset_steps=1)}).status_code
        == 422
    )
    assert client.post(reverse("otp_setup"), {"code": current_code(new)}).status_code == 422
    response = client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(new)})
    assert response["Location"] == reverse("account_security")
    assert list(TOTPDevice.objects.filter(user=medical_assistant).values_list("pk", "confirmed")) == [(new.pk, True)]
    assert client.get(reverse("queue")).status_code == 200  # still signed in, now with the new app


def test_a_required_role_can_replace_the_app_it_cannot_turn_off(
    client: Client, supervisor: User, no_throttle: None
) -> None:
    old = enroll(supervisor)
    sign_in(client, "sup")
    client.post(reverse("otp_verify"), {"code": current_code(old)})
    assert "Replace it with a new phone or app" in client.get(reverse("account_security")).content.decode()
    client.get(reverse("otp_setup"))
    new = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    client.post(reverse("otp_setup"), {"password": PASSWORD, "code": current_code(new)})
    assert list(TOTPDevice.objects.filter(user=supervisor).values_list("pk", flat=True)) == [new.pk]


# --- Every wrong code is logged ----------------------------------------------------------------------


def test_every_wrong_code_is_in_the_security_log_and_the_account_change_log(
    client: Client, medical_assistant: User, auditor: User, no_throttle: None, caplog: pytest.LogCaptureFixture
) -> None:
    from backoffice.models import AccountChange
    from tests.security.conftest import sign_in_verified

    device = enroll(medical_assistant)
    sign_in(client, "ma")
    with caplog.at_level(logging.INFO, logger="backoffice.security"):
        client.post(reverse("otp_verify"), {"code": "000000"})  # at sign-in
        client.post(reverse("otp_verify"), {"code": "111111"})
        client.post(reverse("otp_verify"), {"code": current_code(device)})
        client.post(reverse("otp_disable"), {"password": PASSWORD, "code": "222222"})  # turning it off
        client.get(reverse("otp_setup"))
        client.post(reverse("otp_setup"), {"password": PASSWORD, "code": "333333"})  # replacing it

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("second_factor_failed")]
    assert [line.split()[1] for line in lines] == ["step=sign_in", "step=sign_in", "step=remove", "step=replace"]
    assert all(f"user_id={medical_assistant.pk}" in line and "ip=127.0.0.1" in line for line in lines)
    for code in ("000000", "111111", "222222", "333333"):
        assert code not in caplog.text  # a code is a secret, like a password

    rows = AccountChange.objects.filter(kind=AccountChange.Kind.SECOND_FACTOR_WRONG_CODE).order_by("id")
    assert [(r.subject_id, r.actor_id, r.detail) for r in rows] == [
        (medical_assistant.pk, medical_assistant.pk, "at sign-in"),
        (medical_assistant.pk, medical_assistant.pk, "at sign-in"),
        (medical_assistant.pk, medical_assistant.pk, "turning two-step sign-in off"),
        (medical_assistant.pk, medical_assistant.pk, "replacing the authenticator app"),
    ]

    # Auditors (and supervisors) see them on the account-change log's page.
    page = sign_in_verified(Client(), auditor).get(
        reverse("audit_account_changes"), {"kind": AccountChange.Kind.SECOND_FACTOR_WRONG_CODE}
    )
    assert page.status_code == 200
    assert page.content.decode().count("Wrong authenticator code") >= 4


def test_a_wrong_code_at_setup_is_logged_too(
    client: Client, admin_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    from backoffice.models import AccountChange

    sign_in(client, "admin")
    client.get(reverse("otp_setup"))
    with caplog.at_level(logging.INFO, logger="backoffice.security"):
        assert client.post(reverse("otp_setup"), {"password": PASSWORD, "code": "000000"}).status_code == 422
    assert any(r.getMessage().startswith("second_factor_failed step=enroll") for r in caplog.records)
    assert AccountChange.objects.get(kind=AccountChange.Kind.SECOND_FACTOR_WRONG_CODE).detail == (
        "setting up an authenticator app"
    )


def test_a_throttled_try_is_logged_and_checks_no_code(
    client: Client, admin_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    from backoffice.models import AccountChange

    device = enroll(admin_user)
    sign_in(client, "admin")
    client.post(reverse("otp_verify"), {"code": "000000"})
    with caplog.at_level(logging.INFO, logger="backoffice.security"):
        client.post(reverse("otp_verify"), {"code": current_code(device)})
    assert any(r.getMessage().startswith("second_factor_throttled step=sign_in") for r in caplog.records)
    assert AccountChange.objects.filter(kind=AccountChange.Kind.SECOND_FACTOR_WRONG_CODE).count() == 1
