"""Forms of the specimen pages: scans, hand-over, receipt, rejection, failed draw, reprint."""

from django import forms

from specimens.models import RejectionReason
from specimens.workflow import BODY_SITES, RECEIVING_LOCATIONS, CollectionMethod, FailedDrawReason, Location

_SCAN = {"autocomplete": "off", "data-scan-field": "", "class": "form-control font-monospace", "spellcheck": "false"}


class ScanForm(forms.Form):
    accession = forms.CharField(label="Scan or type an accession", max_length=40, widget=forms.TextInput(attrs=_SCAN))


class ConfirmForm(forms.Form):
    """The bedside check: the tube's label, then the patient's wristband."""

    label = forms.CharField(label="1. Scan the tube's label", max_length=40, widget=forms.TextInput(attrs=_SCAN))
    wristband = forms.CharField(
        label="2. Scan the patient's wristband", max_length=40, widget=forms.TextInput(attrs=_SCAN)
    )
    typed = forms.BooleanField(label="Typed, not scanned", required=False)
    # The draw itself, when it wasn't just now or the volume or site matter (all optional).
    collected_at = forms.DateTimeField(
        label="Drawn at (if not just now)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "class": "form-control form-control-sm"}),
    )
    volume_ml = forms.DecimalField(
        label="Volume (mL)",
        required=False,
        min_value=0,
        max_digits=5,
        decimal_places=1,
        widget=forms.NumberInput(attrs={"class": "form-control form-control-sm", "step": "0.1"}),
    )
    body_site = forms.ChoiceField(
        label="Site",
        required=False,
        choices=lambda: _body_site_choices(),
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )


def _body_site_choices() -> list[tuple[str, object]]:
    """The coded sites, grouped by how the specimen is taken (SNOMED codes stay behind the labels)."""
    groups = [
        (method.label, [(site.key, site.label) for site in BODY_SITES if method in site.methods])
        for method in CollectionMethod
    ]
    return [("", "Not recorded")] + [(label, sites) for label, sites in groups if sites]


def _locations() -> list[tuple[str, str]]:
    return [(value, Location(value).label) for value in RECEIVING_LOCATIONS]


class HandOverForm(forms.Form):
    to = forms.ChoiceField(label="Hand over to", choices=_locations)


class ReceiveForm(forms.Form):
    at = forms.ChoiceField(label="Received at", choices=_locations)
    acceptable = forms.TypedChoiceField(
        label="Condition",
        choices=[("yes", "Acceptable"), ("no", "Not acceptable: reject")],
        coerce=lambda value: value == "yes",
        initial="yes",
        widget=forms.RadioSelect,
    )
    reason = forms.ModelChoiceField(
        label="Reason, if not acceptable", queryset=RejectionReason.objects.filter(is_active=True), required=False
    )
    note = forms.CharField(label="Note", max_length=300, required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("acceptable") is False and not data.get("reason"):
            self.add_error("reason", "Choose why it can't be accepted.")
        return data


class RejectForm(forms.Form):
    prefix = "reject"
    reason = forms.ModelChoiceField(label="Reason", queryset=RejectionReason.objects.filter(is_active=True))
    note = forms.CharField(label="Note", max_length=300, required=False)


class NotCollectedForm(forms.Form):
    prefix = "failed"
    reason = forms.ChoiceField(label="Why not", choices=FailedDrawReason.choices)
    note = forms.CharField(label="Note", max_length=300, required=False)


class ReprintForm(forms.Form):
    reason = forms.CharField(label="Why print it again", max_length=200)


class StoreForm(forms.Form):
    prefix = "store"
    place = forms.CharField(label="Kept where", max_length=80, help_text='e.g. "Fridge 2, rack B".')


class DisposeForm(forms.Form):
    prefix = "dispose"
    note = forms.CharField(label="Note (optional)", max_length=200, required=False)
