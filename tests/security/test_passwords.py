"""Password rules: at least 12 characters, not a common password, not all digits, not the username."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from backoffice.models import User

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1a", "at least 12 characters"),
        ("password1234", "too common"),
        ("482916375018", "entirely numeric"),
        ("maria.alvarez", "too similar"),
    ],
)
def test_it_rejects_weak_passwords(password: str, problem: str) -> None:
    user = User(username="maria.alvarez", first_name="Maria", last_name="Alvarez")
    with pytest.raises(ValidationError) as excinfo:
        validate_password(password, user=user)
    assert any(problem in message for message in excinfo.value.messages), excinfo.value.messages


def test_it_accepts_a_long_uncommon_passphrase() -> None:
    validate_password("lantern-orbit-meadow-42", user=User(username="maria.alvarez"))
