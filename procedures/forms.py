"""Forms for the procedure pages. They validate and lay out; procedures.services changes state."""

import datetime as dt
from decimal import Decimal
from typing import Any

from crispy_forms.helper import FormHelper
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from backoffice.models import User
from backoffice.workflow import TransitionNotAllowed
from procedures import drugs, services
from procedures.models import (
    Addendum,
    Medication,
    MedicationAdministration,
    ProcedureDocumentation,
    ProcedureOrder,
    ProcedureType,
)
from procedures.selectors import eligible_supervisors, performing_staff
from procedures.workflow import CHOSEN_NOT_DONE_REASONS, NotDoneReason, Supervision

VITAL_FIELDS: tuple[tuple[str, str, int, int], ...] = (
    # (name, label, min, max): limits of what can be measured, not of what is normal.
    ("systolic", "BP systolic", 40, 300),
    ("diastolic", "BP diastolic", 20, 200),
    ("pulse", "Pulse", 20, 250),
    ("respiratory_rate", "Resp. rate", 4, 80),
    ("spo2", "SpO₂ %", 50, 100),
)


def _vital_widget(**attrs: str) -> forms.NumberInput:
    # One widget per field: a field writes its min and max into its widget's attrs.
    return forms.NumberInput(attrs={"class": "form-control form-control-sm", **attrs})


class _Form(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True


class StartForm(_Form):
    """Start a procedure; a performer not yet competent says how they are supervised."""

    supervision = forms.ChoiceField(
        label="Supervision",
        choices=[
            (Supervision.PRESENT, "A supervisor is with me now"),
            (Supervision.COSIGN, "A supervisor co-signs my documentation afterwards"),
        ],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        required=False,
    )
    supervisor = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Choose the supervisor…"
    )
    # Not a sign-in form: "one-time-code" and no username field, so browsers don't offer to save the
    # supervisor's password on the trainee's workstation. A supervisor with an authenticator app may
    # type its current code instead (backoffice.accounts.reauth).
    supervisor_password = forms.CharField(
        label="Supervisor's password or authenticator code",
        required=False,
        strip=False,
        help_text="The supervisor types it themselves: their password, or the 6-digit code from their app.",
        widget=forms.PasswordInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, order: ProcedureOrder, performer: User, needs_supervision: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.needs_supervision = needs_supervision
        field = self.fields["supervisor"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = eligible_supervisors(procedure_type=order.procedure_type, performer=performer)
        if needs_supervision:
            self.fields["supervision"].required = True
            self.fields["supervision"].error_messages["required"] = "Choose how you are supervised."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.needs_supervision and data.get("supervision") == Supervision.PRESENT:
            if not data.get("supervisor"):
                self.add_error("supervisor", "Choose the supervisor who is with you.")
            if not data.get("supervisor_password"):
                self.add_error("supervisor_password", "The supervisor types their password or code to confirm.")
        return data


class DocumentationForm(_Form):
    """The procedure's documentation; its fields follow what the procedure type documents."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    complications = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Leave blank if none.",
    )
    tolerance = forms.ChoiceField(
        label="Patient tolerance",
        choices=ProcedureDocumentation.Tolerance.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        required=False,
    )

    def __init__(self, *args: Any, order: ProcedureOrder, documentation: ProcedureDocumentation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ptype: ProcedureType = order.procedure_type
        self.procedure_type = ptype
        doc = documentation
        initial: dict[str, Any] = {
            "version": doc.version,
            "complications": doc.complications,
            "tolerance": doc.tolerance,
        }
        steps = list(ptype.steps.all())
        if steps:
            self.fields["steps"] = forms.TypedMultipleChoiceField(
                label="Checklist",
                choices=[(s.pk, f"{s.position}. {s.text}") for s in steps],
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
            )
            initial["steps"] = list(doc.steps_done.values_list("step_id", flat=True))
        if ptype.consent_required and doc.consent_at is None:
            self.fields["consent_obtained"] = forms.BooleanField(required=False, label="Consent obtained")
            self.fields["consent_from"] = forms.CharField(
                label="Consent given by",
                max_length=120,
                required=False,
                help_text="The patient, or the guardian's name and relationship.",
            )
            initial["consent_from"] = doc.consent_from or "Patient"
        if ptype.timeout_required and doc.timeout_at is None:
            self.fields["timeout_done"] = forms.BooleanField(
                required=False, label="Time-out done: right patient, procedure, site and side confirmed aloud"
            )
        if ptype.documents_site:
            self.fields["site"] = forms.CharField(
                label="Body site",
                max_length=80,
                required=False,
                help_text="E.g. antecubital fossa, deltoid, ear canal.",
            )
            self.fields["laterality"] = forms.ChoiceField(
                choices=[("", "Choose…"), *ProcedureDocumentation.Laterality.choices], required=False
            )
            initial.update(site=doc.site, laterality=doc.laterality)
        if ptype.documents_findings:
            self.fields["findings"] = forms.CharField(
                max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
            )
            initial["findings"] = doc.findings
        if ptype.documents_specimen:
            self.fields["specimen_note"] = forms.CharField(
                label="Specimen collected",
                max_length=200,
                required=False,
                help_text="Tubes or containers, e.g. 1 lavender, 1 gold SST.",
            )
            initial["specimen_note"] = doc.specimen_note
        self.vitals_phases: list[tuple[str, str]] = []
        if ptype.vitals:
            self.vitals_phases = [("before", "Before" if ptype.vitals == "before_after" else "Vital signs")]
            if ptype.vitals == ProcedureType.Vitals.BEFORE_AFTER:
                self.vitals_phases.append(("after", "After"))
            existing = {v.phase: v for v in doc.vitals.all()}
            for phase, _label in self.vitals_phases:
                for name, label, low, high in VITAL_FIELDS:
                    self.fields[f"{phase}_{name}"] = forms.IntegerField(
                        label=label,
                        min_value=low,
                        max_value=high,
                        required=False,
                        widget=_vital_widget(inputmode="numeric"),
                    )
                    initial[f"{phase}_{name}"] = getattr(existing.get(phase), name, None)
                self.fields[f"{phase}_temperature"] = forms.DecimalField(
                    label="Temp °C",
                    min_value=Decimal("30"),
                    max_value=Decimal("45"),
                    decimal_places=1,
                    required=False,
                    widget=_vital_widget(step="0.1"),
                )
                initial[f"{phase}_temperature"] = getattr(existing.get(phase), "temperature", None)
        self.initial = {**initial, **self.initial}

    def draft_values(self, data: QueryDict) -> dict[str, Any]:
        """What a draft keeps of a half-typed form: this form's own fields only, unvalidated (a pulse
        half typed is still what was typed), each cut to its field's length; ticked boxes as booleans
        and the checklist as its list. They come back as the form's initial values."""
        values: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name == "version":
                continue
            if isinstance(field, forms.MultipleChoiceField):
                values[name] = [v for v in data.getlist(name) if v.isdigit()][:100]
            elif isinstance(field, forms.BooleanField):
                values[name] = bool(data.get(name))
            else:
                values[name] = data.get(name, "")[: getattr(field, "max_length", None) or 20]
        return values

    def vitals_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        names = [name for name, *_ in VITAL_FIELDS] + ["temperature"]
        return [(label, [self[f"{phase}_{name}"] for name in names]) for phase, label in self.vitals_phases]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for phase, label in self.vitals_phases:
            systolic, diastolic = data.get(f"{phase}_systolic"), data.get(f"{phase}_diastolic")
            if (systolic is None) != (diastolic is None):
                raise ValidationError(f"{label}: give both blood pressure numbers, or neither.")
            if systolic is not None and diastolic is not None and diastolic >= systolic:
                raise ValidationError(f"{label}: the diastolic pressure must be below the systolic.")
        return data

    def _vitals(self, phase: str) -> services.Vitals:
        data = self.cleaned_data
        return services.Vitals(
            systolic=data.get(f"{phase}_systolic"),
            diastolic=data.get(f"{phase}_diastolic"),
            pulse=data.get(f"{phase}_pulse"),
            respiratory_rate=data.get(f"{phase}_respiratory_rate"),
            spo2=data.get(f"{phase}_spo2"),
            temperature=data.get(f"{phase}_temperature"),
        )

    def to_documentation(self) -> services.Documentation:
        data = self.cleaned_data
        return services.Documentation(
            site=data.get("site", ""),
            laterality=data.get("laterality", ""),
            findings=data.get("findings", ""),
            complications=data.get("complications", ""),
            tolerance=data.get("tolerance", ""),
            specimen_note=data.get("specimen_note", ""),
            consent_obtained=data.get("consent_obtained", False),
            consent_from=data.get("consent_from", ""),
            timeout_done=data.get("timeout_done", False),
            steps_done=frozenset(data.get("steps", [])),
            vitals_before=self._vitals("before"),
            vitals_after=self._vitals("after"),
        )


class MedicationForm(_Form):
    """The drug given: scanned from its package (drug, lot and expiry read from the GS1 code) or typed."""

    prefix = "med"  # shares the page with the documentation form, which also has a site and a version

    version = forms.IntegerField(widget=forms.HiddenInput)
    scan = forms.CharField(
        label="Scan the package",
        required=False,
        max_length=200,
        strip=False,  # a GS1 code's group separators are part of it
        help_text="The 2D code on the vial or carton fills the drug, lot and expiry.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    product = forms.ModelChoiceField(
        label="Drug",
        queryset=Medication.objects.filter(is_active=True),
        required=False,
        empty_label="Choose the drug…",
    )
    dose = forms.DecimalField(min_value=Decimal("0.001"), max_digits=12, decimal_places=3)
    unit = forms.ChoiceField(choices=MedicationAdministration.Unit.choices)
    route = forms.ChoiceField(choices=MedicationAdministration.Route.choices)
    site = forms.CharField(label="Site", max_length=80, required=False, help_text="E.g. left deltoid.")
    lot_number = forms.CharField(label="Lot number", max_length=40, required=False)
    expiry_date = forms.DateField(
        label="Lot expiry", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args: Any, order: ProcedureOrder | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ordered = list(order.ordered_medications.select_related("medication")) if order is not None else []
        if ordered:
            product = self.fields["product"]
            assert isinstance(product, forms.ModelChoiceField)
            product.queryset = Medication.objects.filter(pk__in=[o.medication_id for o in ordered])
            product.help_text = "As ordered."
            if len(ordered) == 1:
                product.initial = ordered[0].medication_id
        self.package_scan: drugs.PackageScan | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("scan") or "").strip():
            try:
                self.package_scan = drugs.read_package_barcode(data["scan"])
            except TransitionNotAllowed as exc:
                self.add_error("scan", str(exc))
                return data
            data["product"] = self.package_scan.medication
            data["lot_number"] = self.package_scan.lot_number
            data["expiry_date"] = self.package_scan.expiry_date
            return data
        for name, message in (
            ("product", "Choose the drug, or scan the package."),
            ("lot_number", "Give the lot number, or scan the package."),
            ("expiry_date", "Give the lot's expiry date, or scan the package."),
        ):
            if not data.get(name) and name not in self.errors:
                self.add_error(name, message)
        return data

    def to_medication(self) -> services.Medication:
        data = self.cleaned_data
        scanned = self.package_scan
        return services.Medication(
            product=data["product"],
            dose=data["dose"],
            unit=data["unit"],
            route=data["route"],
            site=data["site"],
            lot_number=data["lot_number"],
            expiry_date=data["expiry_date"],
            entry=MedicationAdministration.Entry.SCANNED if scanned else MedicationAdministration.Entry.TYPED,
            gtin=scanned.gtin if scanned else "",
        )


class MedicationErrorForm(_Form):
    reason = forms.CharField(
        label="Why it was entered in error",
        max_length=200,
        error_messages={"required": "Say why this entry was made in error."},
    )


class AllergyOverrideForm(_Form):
    medication = forms.ModelChoiceField(queryset=Medication.objects.all(), widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Reason to give it despite the allergy",
        max_length=300,
        error_messages={"required": "Give the reason for giving it despite the allergy."},
    )


class NotDoneForm(_Form):
    prefix = "notdone"

    reason = forms.ChoiceField(
        choices=[("", "Choose a reason…"), *((r, NotDoneReason(r).label) for r in CHOSEN_NOT_DONE_REASONS)]
    )
    note = forms.CharField(label="Details", max_length=300, required=False)


class ReturnForm(_Form):
    comment = forms.CharField(
        label="What needs correcting",
        max_length=500,
        error_messages={"required": "Say what needs correcting."},
    )


class CosignForm(_Form):
    note = forms.CharField(label="Note (optional)", max_length=300, required=False)


class ResubmitForm(_Form):
    note = forms.CharField(label="What you corrected (optional)", max_length=300, required=False)


class AddendumForm(_Form):
    prefix = "addendum"

    reason = forms.ChoiceField(choices=Addendum.Reason.choices, initial=Addendum.Reason.CORRECTION)
    text = forms.CharField(label="Addendum", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class SignOffForm(_Form):
    user = forms.ModelChoiceField(label="Staff member", queryset=User.objects.none(), empty_label="Choose…")
    procedure_type = forms.ModelChoiceField(
        label="Procedure",
        queryset=ProcedureType.objects.filter(is_active=True).order_by("name"),
        empty_label="Choose…",
    )
    expires_on = forms.DateField(
        label=f"Valid until (blank: {services.COMPETENCY_VALID_DAYS} days)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = performing_staff()


class ChargeDayForm(forms.Form):
    date = forms.DateField(label="Day", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def day(self) -> dt.date:
        if self.is_valid() and self.cleaned_data["date"]:
            value: dt.date = self.cleaned_data["date"]
            return value
        return timezone.localdate()
