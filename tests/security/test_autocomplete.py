"""A shared workstation's browser keeps no patient data: every form of the app turns autocomplete off.

Browsers remember what was typed into a field and offer it to the next person at the same screen:
an MRN, a name, a clinical note. Every ``<form>`` in the app's templates says ``autocomplete="off"``
(the form's setting governs each field that doesn't set its own); only the sign-in pages keep
their explicit tokens (``username``, ``current-password``, ``one-time-code``), which help the
person signing in and hold no patient data.
"""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from backoffice.models import Handoff, User

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SIGN_IN = TEMPLATES / "backoffice" / "accounts"
FORM = re.compile(r"<form\b[^>]*>", re.DOTALL)


def app_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html") if SIGN_IN not in p.parents and FORM.search(p.read_text()))


@pytest.mark.parametrize("template", app_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_form_turns_autocomplete_off(template: Path) -> None:
    forms = FORM.findall(template.read_text())
    # The layout's sign-out button is a form with no field: nothing to remember.
    remembering = [f for f in forms if 'autocomplete="off"' not in f and "url 'logout'" not in f]
    assert remembering == []


@pytest.mark.django_db
def test_the_handoff_form_a_clinician_fills_remembers_nothing(client: Client, clinician: User) -> None:
    client.force_login(clinician)
    html = client.get(reverse("handoff_new")).content.decode()
    forms = FORM.findall(html)
    assert forms and all('autocomplete="off"' in f for f in forms if "logout" not in f)
    assert Handoff.objects.count() == 0
