"""Forms for the back-office pages. They validate and lay out; services change state."""

from collections.abc import Iterator
from typing import Any

from crispy_forms.helper import FormHelper
from django import forms
from django.core.exceptions import ValidationError

from backoffice import icd10
from backoffice.identifiers import read_entry
from backoffice.models import ExamRoom, Handoff, Patient, Station, User
from backoffice.roles import ROLE_CLINICIAN
from backoffice.selectors import StationChoice, StationPicker
from backoffice.workflow import HandBackReason, Priority, StationState
from lab.models import TestDefinition
from procedures.models import Medication, ProcedureType

MAX_NOTE = 2000


class HandoffForm(forms.Form):
    """Everything the exam room hands to the back office."""

    patient = forms.ModelChoiceField(
        queryset=Patient.objects.all(),
        to_field_name="uuid",
        widget=forms.HiddenInput,
        error_messages={
            "required": "Find and select the patient first.",
            "invalid_choice": "Select the patient again.",
        },
    )
    ordering_clinician = forms.ModelChoiceField(queryset=User.objects.none(), empty_label="Choose clinician…")
    exam_room = forms.ModelChoiceField(queryset=ExamRoom.objects.filter(is_active=True), empty_label="Choose room…")
    priority = forms.TypedChoiceField(
        choices=Priority.choices, coerce=int, initial=Priority.ROUTINE, widget=forms.RadioSelect
    )
    procedures = forms.ModelMultipleChoiceField(
        queryset=ProcedureType.objects.filter(is_active=True).order_by("category", "name"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    medications = forms.ModelMultipleChoiceField(
        label="Medications to give",
        queryset=Medication.objects.filter(is_active=True, administration_procedure__isnull=False).order_by(
            "name", "strength"
        ),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        help_text="Checked against the patient's allergies; each orders the procedure that gives it.",
    )
    allergy_override_reason = forms.CharField(
        label="Reason to give it despite the allergy",
        required=False,
        max_length=300,
        help_text="Clinicians only: recorded with the order.",
    )
    tests = forms.ModelMultipleChoiceField(
        label="Lab tests",
        queryset=TestDefinition.objects.filter(is_active=True).order_by("performed", "name"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    clinical_note = forms.CharField(
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the back office should know, e.g. the indication or the site.",
    )
    diagnoses = forms.CharField(
        label="Diagnoses (ICD-10-CM)",
        required=False,
        max_length=200,
        help_text="The reason for the tests, e.g. E11.9, R53.83: a reference lab needs it with the order.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    interpreter_needed = forms.BooleanField(required=False, label="Interpreter needed")
    interpreter_language = forms.CharField(
        required=False, max_length=40, help_text="Leave blank to use the patient's preferred language."
    )
    companion = forms.CharField(required=False, max_length=120, label="Escort or companion")
    aide_needed = forms.BooleanField(required=False, label="Needs an aide")
    mobility = forms.ChoiceField(choices=Handoff.Mobility.choices, initial=Handoff.Mobility.INDEPENDENT)
    isolation = forms.ChoiceField(choices=Handoff.Isolation.choices, initial=Handoff.Isolation.NONE)
    # Shown only when the patient is already on the queue; the service refuses a second handoff without it.
    again = forms.BooleanField(required=False, label="Hand off again: send a second handoff for this patient")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        qs = User.objects.filter(groups__name=ROLE_CLINICIAN, is_active=True).order_by("last_name", "first_name")
        clinician_field = self.fields["ordering_clinician"]
        assert isinstance(clinician_field, forms.ModelChoiceField)
        clinician_field.queryset = qs
        if user.groups.filter(name=ROLE_CLINICIAN).exists():
            # A clinician orders as themselves (the service refuses anything else): the only choice.
            clinician_field.queryset = qs.filter(pk=user.pk)
            clinician_field.initial = user.pk
            clinician_field.empty_label = None
        else:
            clinician_field.help_text = "You enter this on the clinician's behalf; the handoff records it."
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def clean_diagnoses(self) -> list[str]:
        return icd10.parse_list(self.cleaned_data.get("diagnoses") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("procedures") and not data.get("tests") and not data.get("medications"):
            raise ValidationError("Order at least one procedure or lab test.")
        return data


class VerifyIdentityForm(forms.Form):
    """Two identifiers: scan the wristband, or type the full name and date of birth.

    A wristband scanner sends its marks around the MRN (WRISTBAND_SCAN_PREFIX/SUFFIX); an MRN without
    them was typed or pasted (from the patient banner, say), which is no wristband check: then the
    full name and date of birth are asked as well (handoff_verify_identity). ``entry`` says which.
    """

    scanned_mrn = forms.CharField(
        label="Scan wristband (MRN)",
        required=False,
        max_length=40,
        help_text="A typed or pasted MRN needs the full name and date of birth too.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "inputmode": "text"}),
    )
    full_name = forms.CharField(
        label="Full name, as the patient says it",
        required=False,
        max_length=160,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    date_of_birth = forms.DateField(
        label="Date of birth, as the patient says it", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # What was in the wristband field, without the scanner's marks, and whether it had them. A typed
        # MRN without the name and date of birth is refused by the service, in the same words.
        self.entry = read_entry(data.get("scanned_mrn") or "")
        if not self.entry.text and not (data.get("full_name", "").strip() and data.get("date_of_birth")):
            raise ValidationError("Scan the wristband, or enter both the full name and the date of birth.")
        return data


class ListedChoiceIterator(forms.models.ModelChoiceIterator):
    """Reads the choices with one plain query, kept on the field's queryset.

    Django's iterator streams them with queryset.iterator(), which on Postgres is a server-side
    cursor: DECLARE, FETCH and CLOSE, three round trips for the handful of rows a select shows.
    """

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class ListedModelChoiceField(forms.ModelChoiceField):
    iterator = ListedChoiceIterator


class StationSelect(forms.Select):
    """The ready stations as the handoff's picker orders them: those that have what its items need, then
    the others, each saying what it lacks and disabled (the service refuses them)."""

    picker: StationPicker | None = None

    def optgroups(self, name: str, value: list[str], attrs: dict[str, Any] | None = None) -> Any:
        picker = self.picker
        if picker is not None:
            self.choices = [("", "Choose a ready station…")]
            if not picker.needs:
                self.choices += [(c.station.code, c.station.name) for c in picker.fitting]
            else:
                if picker.fitting:
                    self.choices.append(
                        ("Has what's needed", [(c.station.code, c.station.name) for c in picker.fitting])
                    )
                if picker.lacking:
                    self.choices.append(("Missing equipment", [(c.station.code, _lacks(c)) for c in picker.lacking]))
        return super().optgroups(name, value, attrs)

    def create_option(
        self,
        name: str,
        value: Any,
        label: int | str,
        selected: bool,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if self.picker is not None and value in {c.station.code for c in self.picker.lacking}:
            option["attrs"]["disabled"] = True
        return option


def _lacks(choice: StationChoice) -> str:
    return f"{choice.station.name} (no {', '.join(need.name.lower() for need in choice.lacks)})"


class StationForm(forms.Form):
    station = ListedModelChoiceField(
        queryset=Station.objects.filter(is_active=True, state=StationState.READY).order_by("kind", "name"),
        to_field_name="code",
        empty_label="Choose a ready station…",
        error_messages={"invalid_choice": "That station is no longer ready; choose another."},
        widget=StationSelect,
    )

    def offer(self, picker: StationPicker) -> "StationForm":
        """List the stations as the picker orders them (it read them; the field's query isn't run)."""
        widget = self.fields["station"].widget
        assert isinstance(widget, StationSelect)
        widget.picker = picker
        return self


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=200, strip=True)


class HandBackForm(forms.Form):
    """Why the patient is handed back: the fixed list only (HandBackReason), so it can be counted."""

    reason = forms.ChoiceField(
        label="Why",
        choices=[("", "Choose a reason"), *HandBackReason.choices],
        error_messages={"required": "Choose why."},
    )


class PatientSearchForm(forms.Form):
    q = forms.CharField(max_length=80, strip=True, required=False)
