"""Password rules: at least 12 characters, not a common password, not all digits, not the username."""

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    NumericPasswordValidator,
    UserAttributeSimilarityValidator,
    get_default_password_validators,
    validate_password,
)
from django.core.exceptions import ValidationError

from backoffice import settings as production_settings
from backoffice.models import User

pytestmark = pytest.mark.django_db

PASSPHRASE = "lantern-orbit-meadow-42"


def maria() -> User:
    return User(username="maria.alvarez", first_name="Maria", last_name="Alvarez", email="maria.alvarez@clinic.test")


def errors_from(password: str, user: User | None) -> list[tuple[str, str | None, str]]:
    """(validator class, error code, message) for every rule the password breaks, from every configured validator."""
    errors = []
    for validator in get_default_password_validators():
        try:
            validator.validate(password, user)
        except ValidationError as error:
            errors += [(type(validator).__name__, e.code, message) for e in error.error_list for message in e.messages]
    return errors


def test_the_tests_run_with_the_production_validators() -> None:
    assert settings.AUTH_PASSWORD_VALIDATORS == production_settings.AUTH_PASSWORD_VALIDATORS


def test_the_configured_validators_are_the_documented_ones() -> None:
    validators = {type(v): v for v in get_default_password_validators()}
    assert len(validators) == len(get_default_password_validators()), "a validator is configured twice"
    assert set(validators) == {
        MinimumLengthValidator,
        CommonPasswordValidator,
        NumericPasswordValidator,
        UserAttributeSimilarityValidator,
    }
    assert validators[MinimumLengthValidator].min_length == 12
    similarity = validators[UserAttributeSimilarityValidator]
    assert {"username", "first_name", "last_name", "email"} <= set(similarity.user_attributes)
    assert similarity.max_similarity == 0.7
    assert "password1234" in validators[CommonPasswordValidator].passwords


@pytest.mark.parametrize(
    ("password", "validator", "code", "problem"),
    [
        ("Short-1a", MinimumLengthValidator, "password_too_short", "at least 12 characters"),
        ("Gx7-meadow4", MinimumLengthValidator, "password_too_short", "at least 12 characters"),  # 11
        ("password1234", CommonPasswordValidator, "password_too_common", "too common"),
        ("482916375018", NumericPasswordValidator, "password_entirely_numeric", "entirely numeric"),
        ("maria.alvarez", UserAttributeSimilarityValidator, "password_too_similar", "too similar to the username"),
    ],
)
def test_it_rejects_weak_passwords(password: str, validator: type, code: str, problem: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_password(password, user=maria())
    assert any(problem in message for message in excinfo.value.messages), excinfo.value.messages
    # The rule the docstring names is the one that refuses it.
    assert any(name == validator.__name__ and c == code for name, c, _ in errors_from(password, maria()))


def test_twelve_characters_are_long_enough() -> None:
    assert errors_from("Gx7-meadow4q", maria()) == []


def test_it_accepts_a_long_uncommon_passphrase() -> None:
    assert len(get_default_password_validators()) == 4  # every rule ran, not none of them
    assert errors_from(PASSPHRASE, maria()) == []
    validate_password(PASSPHRASE, user=maria())  # raises ValidationError if any rule refuses it


def test_the_similarity_rule_reads_the_users_attributes() -> None:
    """The same password is refused for the user it resembles and accepted for someone else."""
    assert errors_from("maria.alvarez", user=None) == []  # no user, nothing to compare with
    other = User(username="jordan.lee", first_name="Jordan", last_name="Lee", email="jordan.lee@clinic.test")
    assert errors_from("maria.alvarez", other) == []
    assert [(name, code) for name, code, _ in errors_from("maria.alvarez", maria())] == [
        ("UserAttributeSimilarityValidator", "password_too_similar")
    ]


def test_the_similarity_rule_reads_the_email_too() -> None:
    user = User(username="hnkemelu", first_name="Harriet", last_name="Nkemelu", email="harriet.nkemelu@clinic.test")
    messages = [message for _, code, message in errors_from("harriet.nkemelu", user) if code == "password_too_similar"]
    assert messages == ["The password is too similar to the email address."]
    user.email = "h.n@clinic.test"
    assert errors_from("harriet.nkemelu", user) == []
