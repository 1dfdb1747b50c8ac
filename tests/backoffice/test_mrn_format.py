"""MRNs have a configurable format (issue 13, point 12): MRN_PATTERN, checked at start-up.

A patient is saved through a form (admin) or an import only with an MRN the whole of which matches
the pattern; a pattern that isn't a regular expression, or one that accepts an empty MRN, stops
the app at its system check, as does a scanner set-up that can't tell a scan from typing.
"""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse

from backoffice.identifiers import DEFAULT_MRN_PATTERN, check_identifier_settings, is_mrn
from backoffice.models import Patient, User
from tests.factories import PatientFactory, UserFactory


def ids(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [p.id for p in problems]


class TestTheFormat:
    @pytest.mark.parametrize("mrn", ["M500035", "M100001", "S0000001", "M99999999999", "ABC123456"])
    def test_the_clinics_mrns_fit_the_default(self, mrn: str) -> None:
        assert is_mrn(mrn)

    @pytest.mark.parametrize("mrn", ["", "500035", "m500035", "M500", "M500035 ", "M500035X", "M-500035", "ABCD123456"])
    def test_other_text_does_not(self, mrn: str) -> None:
        assert not is_mrn(mrn)

    @override_settings(MRN_PATTERN=r"[0-9]{8}")
    def test_a_clinic_sets_its_own(self) -> None:
        assert is_mrn("00012345") and not is_mrn("M500035")


@pytest.mark.django_db
class TestThePatientModel:
    def test_a_patient_with_an_mrn_out_of_format_is_refused_with_a_clear_message(self) -> None:
        patient = PatientFactory.build(mrn="12-34")
        with pytest.raises(ValidationError) as refused:
            patient.full_clean()
        assert refused.value.message_dict["mrn"] == [
            f"12-34 is not an MRN in this clinic's format (MRN_PATTERN {DEFAULT_MRN_PATTERN}, e.g. M500035)."
        ]

    def test_one_in_format_passes(self) -> None:
        PatientFactory.build(mrn="M500035").full_clean()

    def test_admin_refuses_it_and_saves_nothing(self, client: Client, settings) -> None:  # type: ignore[no-untyped-def]
        settings.OTP_REQUIRED_FOR_SUPERUSERS = False
        root: User = UserFactory(is_superuser=True, is_staff=True)
        client.force_login(root)
        response = client.post(
            reverse("admin:backoffice_patient_add"),
            {
                "mrn": "not-an-mrn",
                "family_name": "Okafor",
                "given_name": "Grace",
                "date_of_birth": "1980-02-14",
                "sex": "F",
                "preferred_language": "English",
            },
        )
        assert response.status_code == 200
        assert "not-an-mrn is not an MRN in this clinic&#x27;s format" in response.content.decode()
        assert not Patient.objects.filter(family_name="Okafor").exists()


class TestTheSystemCheck:
    def test_the_defaults_pass(self) -> None:
        assert check_identifier_settings() == []

    @override_settings(MRN_PATTERN="M[0-9{6}")
    def test_a_pattern_that_is_no_regular_expression_stops_the_app(self) -> None:
        [problem] = check_identifier_settings()
        assert problem.id == "backoffice.E110"
        assert "MRN_PATTERN 'M[0-9{6}' is not a regular expression" in problem.msg

    @override_settings(MRN_PATTERN="M?[0-9]*")
    def test_a_pattern_that_takes_an_empty_mrn_stops_the_app(self) -> None:
        assert ids(check_identifier_settings()) == ["backoffice.E111"]

    @override_settings(WRISTBAND_SCAN_PREFIX="", WRISTBAND_SCAN_SUFFIX="")
    def test_no_scanner_mark_stops_the_app(self) -> None:
        [problem] = check_identifier_settings()
        assert problem.id == "backoffice.E112"
        assert "an MRN typed or pasted from the screen would count as a scanned wristband" in problem.msg

    @override_settings(WRISTBAND_SCAN_PREFIX=" ]C0")
    def test_a_mark_with_a_space_stops_the_app(self) -> None:
        assert ids(check_identifier_settings()) == ["backoffice.E113"]

    def test_it_runs_with_the_others(self) -> None:
        from django.core import checks

        assert check_identifier_settings in checks.registry.registry.get_checks()
